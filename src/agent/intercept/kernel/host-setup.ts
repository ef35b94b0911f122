import type { Logger } from '../../../common/log.js';
import { HostCommandError, run, runIgnoringAbsent } from './exec.js';
import { processAlive, readJournal, removeJournal, writeJournal, type Journal } from './journal.js';
import { buildRuleset, NFT_FAMILY, NFT_TABLE, type InterceptMode } from './nft-ruleset.js';

/**
 * Route protocol number marking our route (`ip route ... proto 122`), so cleanup can find it by
 * that mark whatever pool it was made for, and never touches anyone else's routes.
 */
export const ROUTE_PROTO = 122;

export interface HostSetupOptions {
  cidr: string;
  /** Ports of the agent's listeners on 127.0.0.1. */
  tcpPort: number;
  udpPort: number;
  /** `auto` tries TPROXY and falls back to redirect when the kernel lacks it. */
  mode: InterceptMode | 'auto';
  stateDir: string;
  log: Logger;
}

/**
 * The synthetic pool is made local with one route in the kernel's `local` table:
 *   local <cidr> dev lo src 127.0.0.1 table local proto 122
 * Why the `local` table and not a table of our own behind an `ip rule`: the kernel accepts a
 * source address as local only if the `local` table says so (__ip_dev_find), so with the route
 * elsewhere connect() to a synthetic IP failed with ENETUNREACH. `src 127.0.0.1` makes clients
 * talk from 127.0.0.1, never from a pool address: replies to them then never match the pool
 * rules, and TPROXY cannot mistake a reply for a new flow.
 */
function routeArgs(verb: 'add' | 'del', cidr: string): string[] {
  return ['route', verb, 'local', cidr, 'dev', 'lo', 'src', '127.0.0.1', 'table', 'local', 'proto', String(ROUTE_PROTO)];
}

/** Removes whatever a previous run left (its journal, our table, our routes) before we apply. */
export async function removeLeftovers(stateDir: string, log: Logger): Promise<void> {
  const journal = await readJournal(stateDir);
  if (journal && processAlive(journal.pid)) {
    throw new Error(`the kernel intercept is held by another agent (pid ${journal.pid}, since ${journal.startedAt}); stop it first`);
  }
  const table = await runIgnoringAbsent('nft', ['delete', 'table', NFT_FAMILY, NFT_TABLE]);
  const protos = new Set([ROUTE_PROTO, ...(journal ? [journal.routeProto] : [])]);
  for (const proto of protos) await run('ip', ['route', 'flush', 'table', 'local', 'proto', String(proto)]);
  if (journal || table) log.warn({ previousPid: journal?.pid, table, journal: !!journal }, 'removed the kernel intercept of a previous run');
  await removeJournal(stateDir);
}

async function applyRuleset(mode: InterceptMode, o: HostSetupOptions): Promise<void> {
  await run('nft', ['-f', '-'], buildRuleset({ mode, cidr: o.cidr, tcpPort: o.tcpPort, udpPort: o.udpPort }));
}

/** Applies route and rules; returns the mode that the kernel accepted. */
export async function applyHostSetup(opts: HostSetupOptions): Promise<InterceptMode> {
  const journal: Journal = {
    version: 1,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    mode: opts.mode === 'redirect' ? 'redirect' : 'tproxy',
    cidr: opts.cidr,
    routeProto: ROUTE_PROTO,
    nftTable: `${NFT_FAMILY} ${NFT_TABLE}`,
  };
  await writeJournal(opts.stateDir, journal);
  await run('ip', routeArgs('add', opts.cidr));
  if (opts.mode !== 'auto') {
    await applyRuleset(opts.mode, opts);
    return opts.mode;
  }
  try {
    await applyRuleset('tproxy', opts);
    return 'tproxy';
  } catch (err) {
    if (!(err instanceof HostCommandError)) throw err;
    // nft applies a file atomically: the failed attempt left nothing behind.
    opts.log.warn({ err: err.message }, 'TPROXY unavailable, falling back to redirect + SO_ORIGINAL_DST (TCP only)');
    await writeJournal(opts.stateDir, { ...journal, mode: 'redirect' });
    await applyRuleset('redirect', opts);
    return 'redirect';
  }
}

/** Undoes applyHostSetup; safe to call twice or after a partial apply. */
export async function removeHostSetup(opts: Pick<HostSetupOptions, 'cidr' | 'stateDir'>): Promise<void> {
  await runIgnoringAbsent('nft', ['delete', 'table', NFT_FAMILY, NFT_TABLE]);
  await runIgnoringAbsent('ip', routeArgs('del', opts.cidr));
  await removeJournal(opts.stateDir);
}

/** Whether this host can run the intercept at all (root, ip, nft); the reason when not. */
export async function interceptUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'kernel interception is Linux only';
  if (process.getuid?.() !== 0) return 'kernel interception needs root (CAP_NET_ADMIN)';
  for (const [tool, args] of [['nft', ['--version']], ['ip', ['-V']]] as const) {
    try {
      await run(tool, args);
    } catch (err) {
      return `${tool} is not usable (${(err as Error).message}); install nftables and iproute2`;
    }
  }
  return undefined;
}
