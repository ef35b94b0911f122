/**
 * Gathers the facts the trusted-network criteria are evaluated against. Parsers are pure and
 * exported for tests; gatherFacts reads the OS (paths injectable, so a test can point it at
 * fixtures or run it in a network namespace with a bind-mounted resolv.conf).
 */
import { execFile } from 'node:child_process';
import { lookup as dnsLookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { canonicalIp, type NetworkFacts } from './trusted-network.js';

const execFileP = promisify(execFile);

export function parseResolvConf(text: string): { dnsServers: string[]; searchDomains: string[] } {
  const dnsServers: string[] = [];
  let searchDomains: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [keyword, ...args] = line.split(/\s+/);
    if (keyword === 'nameserver' && args[0] && canonicalIp(args[0])) dnsServers.push(args[0]);
    // resolv.conf(5): `domain` and `search` are exclusive, the last one wins.
    else if (keyword === 'search' || keyword === 'domain') searchDomains = args.filter(Boolean);
  }
  return { dnsServers, searchDomains };
}

/** /proc/net/route: default routes (destination and mask 0, RTF_GATEWAY) → gateway. */
export function parseProcNetRoute(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [, dest, gw, flags, , , , mask] = f;
    if (dest !== '00000000' || mask !== '00000000' || !(parseInt(flags as string, 16) & 0x2)) continue;
    // The kernel prints the address in host byte order, i.e. little-endian on every Linux we run on.
    const n = parseInt(gw as string, 16);
    out.push([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.'));
  }
  return out;
}

/** /proc/net/ipv6_route: ::/0 with a next hop. */
export function parseIpv6Route(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dest, prefix, , , hop] = f;
    if (!/^0{32}$/.test(dest as string) || prefix !== '00' || /^0{32}$/.test(hop as string)) continue;
    const groups = (hop as string).match(/.{4}/g) as string[];
    out.push(canonicalIp(groups.join(':')) as string);
  }
  return out;
}

/** `ip route show default` output, for systems without /proc/net/route. */
export function parseIpRoute(text: string): string[] {
  return [...text.matchAll(/^default\s+via\s+(\S+)/gm)].map((m) => m[1] as string);
}

export interface GatherOptions {
  resolvConfPath?: string;
  procRoutePath?: string;
  procIpv6RoutePath?: string;
  /** Names to resolve (the hostname criterion). */
  names?: string[];
  /** Per name; a lookup that takes longer counts as failed (no address). */
  lookupTimeoutMs?: number;
  lookup?: (name: string) => Promise<string[]>;
  interfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /**
   * The network's DNS servers when resolv.conf no longer says them: while the agent holds the
   * OS resolver, resolv.conf names the agent, and the upstreams it learned are the real ones.
   */
  dnsServers?: () => readonly string[] | undefined;
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function defaultGateways(opts: GatherOptions): Promise<string[]> {
  const v4 = await readOptional(opts.procRoutePath ?? '/proc/net/route');
  if (v4 !== undefined) {
    const v6 = await readOptional(opts.procIpv6RoutePath ?? '/proc/net/ipv6_route');
    return [...parseProcNetRoute(v4), ...(v6 ? parseIpv6Route(v6) : [])];
  }
  try {
    const [a, b] = await Promise.all(
      [['route', 'show', 'default'], ['-6', 'route', 'show', 'default']].map((args) => execFileP('ip', args, { timeout: 2_000 })),
    );
    return [...parseIpRoute(a?.stdout ?? ''), ...parseIpRoute(b?.stdout ?? '')];
  } catch {
    return []; // no /proc and no `ip`: the gateway criterion simply never holds
  }
}

async function resolveWithTimeout(name: string, opts: GatherOptions): Promise<string[] | undefined> {
  const lookup = opts.lookup ?? (async (n: string) => (await dnsLookup(n, { all: true })).map((r) => r.address));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), opts.lookupTimeoutMs ?? 2_000);
  });
  try {
    return await Promise.race([lookup(name).catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function gatherFacts(opts: GatherOptions = {}): Promise<NetworkFacts> {
  const resolv = parseResolvConf((await readOptional(opts.resolvConfPath ?? '/etc/resolv.conf')) ?? '');
  const learned = opts.dnsServers?.();
  if (learned) resolv.dnsServers = learned.map((u) => u.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([\d.]+):\d+$/, '$1'));
  const ifaces = (opts.interfaces ?? os.networkInterfaces)();
  const addresses = Object.values(ifaces).flatMap((list) => (list ?? []).map((i) => i.address));
  const [gateways, lookups] = await Promise.all([
    defaultGateways(opts),
    Promise.all((opts.names ?? []).map(async (n) => [n, await resolveWithTimeout(n, opts)] as const)),
  ]);
  const resolved: Record<string, string[]> = {};
  for (const [n, addrs] of lookups) if (addrs) resolved[n] = addrs;
  return { ...resolv, defaultGateways: gateways, addresses, resolved };
}
