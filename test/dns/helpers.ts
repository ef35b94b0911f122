import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { expect } from 'vitest';
import type { DnsStats } from '../../src/agent/dns/dns-server.js';
import { routeName } from '../../src/agent/tenants/tenant-router.js';
import { AppSegment } from '../../src/protocol/segments.js';

/** Absolute path of an executable on PATH (or sbin), undefined when not installed. */
export function toolPath(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${name}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/** Print why a group of tests is skipped, so a missing tool never looks like a pass. */
export function warnIfMissing(tool: string, pkg: string): boolean {
  const found = toolPath(tool) !== undefined;
  if (!found) console.warn(`SKIP: ${tool} not installed (apt-get install -y ${pkg}); tests that need it are skipped`);
  return !found;
}

export interface Addr {
  address: string;
  port: number;
}

export interface DigResult {
  status: string;
  flags: string[];
  answers: { name: string; ttl: number; type: string; data: string }[];
  opt: boolean;
  udpSize?: number;
  transport?: string;
  raw: string;
}

/** Run the real dig against `server` and parse the parts the tests look at. */
export function dig(server: Addr, args: string[]): Promise<DigResult> {
  const argv = [`@${server.address}`, '-p', String(server.port), '+tries=1', '+time=3', ...args];
  return new Promise((resolve) => {
    execFile('dig', argv, { timeout: 20_000 }, (_err, stdout) => {
      const raw = String(stdout);
      const status = /status: (\w+)/.exec(raw)?.[1] ?? (/timed out|no servers/.test(raw) ? 'TIMEOUT' : 'UNKNOWN');
      const flags = (/;; flags: ([^;]*);/.exec(raw)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
      const section = /;; ANSWER SECTION:\n([\s\S]*?)(\n\n|$)/.exec(raw)?.[1] ?? '';
      const answers = section
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith(';'))
        .map((l) => {
          const [name = '', ttl = '0', , type = '', ...data] = l.split(/\s+/);
          return { name, ttl: Number(ttl), type, data: data.join(' ') };
        });
      const udp = /; EDNS: version: \d+, flags:[^;]*; udp: (\d+)/.exec(raw)?.[1];
      const transport = /;; SERVER: .*\((\w+)\)/.exec(raw)?.[1];
      resolve({
        status,
        flags,
        answers,
        opt: raw.includes('OPT PSEUDOSECTION'),
        raw,
        ...(udp ? { udpSize: Number(udp) } : {}),
        ...(transport ? { transport } : {}),
      });
    });
  });
}

export function encodeQuery(name: string, type: dnsPacket.RecordType, opts: { id?: number; edns?: number } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals:
      opts.edns === undefined
        ? []
        : [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
}

/** Send one datagram; resolves with the first reply, or undefined after `timeoutMs`. */
export function udpQuery(to: Addr, msg: Buffer, timeoutMs = 1_000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const done = (v: Buffer | undefined) => {
      clearTimeout(timer);
      sock.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('message', (m) => done(m));
    sock.send(msg, to.port, to.address);
  });
}

/** Send framed messages over one TCP connection; resolves with `expect` replies (or fewer on close). */
export function tcpQuery(to: Addr, msgs: Buffer[], expect = msgs.length, timeoutMs = 3_000): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const replies: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const sock = net.connect(to.port, to.address);
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(replies);
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on('error', done);
    sock.on('close', done);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (replies.length >= expect) done();
    });
    sock.on('connect', () => {
      for (const m of msgs) {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(m.length, 0);
        sock.write(Buffer.concat([len, m]));
      }
    });
  });
}

/** The demo tenant's segments, routed with the real tenant router. */
export const demoTenants = [
  {
    id: 'demo',
    segments: [
      AppSegment.parse({ id: 's1', name: 'intranet', domains: ['intranet.demo.internal', 'echo.demo.internal', 'down.demo.internal'], tcpPorts: [{ from: 80, to: 80 }] }),
      AppSegment.parse({ id: 's2', name: 'wild', domains: ['*.apps.demo.internal'], tcpPorts: [{ from: 8080, to: 8080 }] }),
    ],
  },
];

export function demoAppFor(name: string): { tenant: string } | undefined {
  const r = routeName(demoTenants, name);
  return r && { tenant: r.tenant.id };
}

export interface Dnsmasq {
  addr: Addr;
  /** Number of queries dnsmasq logged for `name` (any type). */
  queriesFor(name: string): number;
  stop(): Promise<void>;
}

/**
 * A real upstream resolver: dnsmasq on 127.0.0.1 and a random port, answering from its own
 * configuration only (no upstream of its own), logging every query it receives.
 */
export async function startDnsmasq(extraArgs: string[]): Promise<Dnsmasq> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    let log = '';
    const child: ChildProcess = spawn(
      toolPath('dnsmasq') as string,
      ['-d', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces', '--listen-address=127.0.0.1', `--port=${port}`, '--log-queries', ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const addr = { address: '127.0.0.1', port };
    for (let i = 0; i < 30 && child.exitCode === null; i++) {
      if (await udpQuery(addr, encodeQuery('probe.invalid', 'A'), 100)) {
        return {
          addr,
          queriesFor: (name) => log.split('\n').filter((l) => l.includes(`] ${name} from`)).length,
          stop: async () => {
            child.kill('SIGTERM');
            await exited;
          },
        };
      }
    }
    child.kill('SIGKILL');
    await exited;
  }
  throw new Error('dnsmasq did not start');
}

/** Every message has exactly one outcome once traffic has settled. */
export function expectBalanced(s: DnsStats): void {
  const outcomes = s.answeredApp + s.nxdomain + s.forwarded + s.formerr + s.notimp + s.servfail + s.dropped + s.rateLimited;
  expect(outcomes).toBe(s.queries);
}

export interface Scripted {
  addr: Addr;
  received: { transport: 'udp' | 'tcp'; name: string }[];
  stop(): Promise<void>;
}

/**
 * A fake upstream on UDP and TCP (same port) whose answers a test writes: `answer` gets the
 * raw query and returns the raw reply, or undefined to stay silent.
 */
export async function startScripted(answer: (query: Buffer, transport: 'udp' | 'tcp') => Buffer | undefined): Promise<Scripted> {
  const received: Scripted['received'] = [];
  const note = (q: Buffer, transport: 'udp' | 'tcp') => received.push({ transport, name: dnsPacket.decode(q).questions?.[0]?.name ?? '' });
  const onUdp = (udp: dgram.Socket) => (q: Buffer, rinfo: dgram.RemoteInfo) => {
    note(q, 'udp');
    const r = answer(q, 'udp');
    if (r) udp.send(r, rinfo.port, rinfo.address);
  };
  const onTcp = (s: net.Socket) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => s.destroy());
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const q = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + q.length);
        note(q, 'tcp');
        const r = answer(q, 'tcp');
        if (!r) continue;
        const len = Buffer.alloc(2);
        len.writeUInt16BE(r.length, 0);
        s.write(Buffer.concat([len, r]));
      }
    });
  };
  // UDP picks the port, TCP must get the same one; another test may hold it, so retry.
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket('udp4');
    udp.on('message', onUdp(udp));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const port = udp.address().port;
    const tcp = net.createServer(onTcp);
    const ok = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (!ok) {
      udp.close();
      if (attempt < 10) continue;
      throw new Error('no port free for both UDP and TCP');
    }
    return {
      addr: { address: '127.0.0.1', port },
      received,
      stop: async () => {
        udp.close();
        await new Promise<void>((r) => tcp.close(() => r()));
      },
    };
  }
}

/** The rcode of a message (dns-packet's typings omit its decoded `rcode`). */
export const rcodeOf = (m: Buffer | undefined): number | undefined => (m ? m.readUInt16BE(2) & 0xf : undefined);
