// The whole zero-trust path, end to end: application → agent (SOCKS5) ⇒ Z-Tunnel (mTLS 1.3,
// HTTP/2 CONNECT microtunnel) ⇒ edge ⇒ connector → server, against the same application talking
// to the same server over direct loopback TCP, in the same run (bench/world.ts: four processes —
// this one is the application, then agent | edge + connector | app servers).
//
//   path-bulk / path-direct-tcp   one TCP stream downloads --size MiB (MiB/s)
//   path-ttfb / path-ttfb-direct  serial small HTTP GETs on fresh connections: connect (+ the
//                                 SOCKS5 handshake on the path) → request → first response byte
//   path-idle-10k                 agent RSS while --conns (10,000) tunneled connections sit idle,
//                                 against the same agent with none
//
// The application speaks SOCKS5 as curl and browsers do (RFC 1928, not pipelined): greeting,
// wait for the method, CONNECT by name, wait for the reply. Those two round trips are part of
// what an application pays on the path, so they are inside the time to first byte.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { KIB_TO_MB, addPerUnit, cpuOf, perRoleSummary, sleepsOf, matchesOnly, median, mibPerSec, percentile, round, startTimer, throughputRow, ttfbFigures, u64, type BenchOptions, type BenchResult, type Benchmark } from './lib.js';
import { loadavg } from 'node:os';
import { nofileLimit, PATH_HOSTS, raiseSoftNofile, PATH_PORTS, procMemory, serviceNodeOptions, startWorld, tsxLoaderKiB, worldProcs, type World } from './world.js';

const ROWS = ['path-bulk', 'path-direct-tcp', 'path-ttfb', 'path-ttfb-direct', 'path-reset', 'path-close', 'path-idle-10k'] as const;
type Row = (typeof ROWS)[number];

/** Targets of the issue, on this 2-core machine. */
const TARGETS = { bulkRatio: 0.2, setupOverheadMs: 1, idleRssMB: 150 } as const;
export const WARMUP_BYTES = 64 << 20;
const TTFB_PER_ROUND = 300;
const TTFB_WARMUP = 500;
const IDLE_CONNS = 10_000;
const IDLE_CONCURRENCY = 256;
const IDLE_SETTLE_MS = 1_500;
const IDLE_ECHO_SAMPLE = 100;
const CYCLES_PER_ROUND = 300;
const CYCLE_WARMUP = 300;

// ---------------------------------------------------------------------------------------------
// Client side: SOCKS5 and direct connections
// ---------------------------------------------------------------------------------------------

/** Reads exactly n bytes in paused mode; rejects when the socket ends first. */
function readExactly(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      s.off('readable', tryRead);
      s.off('end', onEnd);
      s.off('error', onError);
    };
    const tryRead = (): void => {
      const b = s.read(n) as Buffer | null;
      if (b === null) return;
      cleanup();
      resolve(b);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`connection ended before ${n} bytes`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    s.on('readable', tryRead);
    s.once('end', onEnd);
    s.once('error', onError);
    tryRead();
  });
}

export function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** SOCKS5 CONNECT by name through the agent, the way curl --socks5-hostname does it. */
async function connectSocks(socksPort: number, host: string, port: number): Promise<net.Socket> {
  const s = await connectTcp(socksPort);
  try {
    s.write(Buffer.from([5, 1, 0]));
    const method = await readExactly(s, 2);
    if (method[0] !== 5 || method[1] !== 0) throw new Error(`SOCKS method refused (${method.toString('hex')})`);
    const name = Buffer.from(host);
    s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    // The agent always replies with an IPv4 bind address: 10 bytes.
    const reply = await readExactly(s, 10);
    if (reply[1] !== 0) throw new Error(`SOCKS reply ${reply[1] ?? '?'}`);
    return s;
  } catch (err) {
    s.destroy();
    throw err;
  }
}

export type Connect = () => Promise<net.Socket>;

/** One bulk download: request N bytes, count them to the server's FIN. Connection setup is not timed. */
export async function bulkOnce(connect: Connect, bytes: number, sha: boolean): Promise<{ ns: bigint; sha?: string }> {
  const s = await connect();
  const hash = sha ? createHash('sha256') : undefined;
  const t = startTimer();
  const received = await new Promise<number>((resolve, reject) => {
    let n = 0;
    s.on('data', (c: Buffer) => {
      n += c.length;
      hash?.update(c);
    });
    s.once('end', () => resolve(n));
    s.once('error', reject);
    s.write(u64(bytes));
    s.resume();
  });
  const ns = t.ns();
  s.end();
  s.destroy();
  if (received !== bytes) throw new Error(`bulk: received ${received} of ${bytes} bytes`);
  return { ns, ...(hash ? { sha: hash.digest('hex') } : {}) };
}

const GET = Buffer.from(`GET / HTTP/1.1\r\nHost: ${PATH_HOSTS.http}\r\nConnection: close\r\n\r\n`);

/** One small HTTP GET on a fresh connection: ms from connect to the first response byte. */
export async function ttfbOnce(connect: Connect): Promise<number> {
  const t = startTimer();
  const s = await connect();
  s.write(GET);
  const first = await readExactly(s, 1);
  const ms = t.ms();
  if (first.toString() !== 'H') throw new Error(`ttfb: response starts with ${first.toString('hex')}`);
  // Read the rest, so the server finishes its response before the connection goes.
  await new Promise<void>((resolve) => {
    s.on('data', () => undefined);
    s.once('end', () => resolve());
    s.once('error', () => resolve());
    s.once('close', () => resolve());
    s.resume();
  });
  s.destroy();
  return ms;
}

/**
 * One microtunnel through the path to the echo app, proven established end to end (a byte
 * echoed), then ended by the application: with an RST (`reset`: the agent resets the
 * microtunnel, which goes through the edge to the connector as reset requests, protocol.md
 * §5.3) or with a FIN, waiting for the echo app's FIN back (`close`).
 */
async function cycleOnce(connect: Connect, end: 'reset' | 'close'): Promise<void> {
  const s = await connect();
  s.write('z');
  const b = await readExactly(s, 1);
  if (b.toString() !== 'z') throw new Error(`cycle: echo answered ${b.toString('hex')}`);
  if (end === 'reset') {
    s.resetAndDestroy();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    s.once('end', () => resolve());
    s.once('error', reject);
    s.resume();
    s.end();
  });
  s.destroy();
}

// ---------------------------------------------------------------------------------------------
// Idle connections
// ---------------------------------------------------------------------------------------------

interface IdleResult {
  conns: number;
  opened: number;
  failed: number;
  firstError?: string;
  openSeconds: number;
  echoed: number;
  appOpen: number;
  agentActive: number;
  baseRssKiB: number;
  rssKiB: number;
  hwmKiB: number;
  baseHeap: number;
  heap: number;
  /** V8 heap committed, and its young (new_space) and old generation parts, bytes. */
  heapTotal: number;
  newSpace: number;
  oldSpace: number;
  rssAfterCloseKiB: number;
  nofile: string;
  limitedBy?: string;
}

async function idleCase(world: World, wantConns: number, log: (s: string) => void): Promise<IdleResult> {
  const agentPid = world.agent.pid;
  // Every process on the way holds one descriptor per connection: the client (here), the agent,
  // the connector (cloud process) and the app server. Raise soft limits to the hard ones.
  const pids = [process.pid, agentPid, world.cloud.pid, world.apps.pid];
  for (const pid of pids) raiseSoftNofile(pid);
  const limits = pids.map((pid) => nofileLimit(pid));
  const room = Math.min(...limits.map((l) => l.soft)) - 512;
  const conns = Math.min(wantConns, room);
  const limitedBy = conns < wantConns ? `RLIMIT_NOFILE soft ${Math.min(...limits.map((l) => l.soft))}` : undefined;
  if (limitedBy) log(`  [path] idle: only ${conns} connections fit ${limitedBy}`);
  const open = (): Promise<net.Socket> => connectSocks(world.agent.socksPort, PATH_HOSTS.idle, PATH_PORTS.idle);

  // Warm the agent's code paths (a hundred opens and closes), then settle: the 0-connection baseline.
  for (let i = 0; i < 100; i++) (await open()).destroy();
  await delay(IDLE_SETTLE_MS);
  const base = procMemory(agentPid);
  const baseMem = await world.agentMemory();

  const sockets: net.Socket[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const t = startTimer();
  const worker = async (): Promise<void> => {
    while (next < conns) {
      next++;
      try {
        const s = await open();
        s.on('error', () => undefined);
        sockets.push(s);
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: IDLE_CONCURRENCY }, worker));
  const openSeconds = t.seconds();
  log(`  [path] idle: ${sockets.length} connections open in ${openSeconds.toFixed(1)} s (${failed} failed)`);
  await delay(IDLE_SETTLE_MS);

  // Still alive end to end: a sample echoes one byte through the whole path.
  let echoed = 0;
  await Promise.all(
    Array.from({ length: Math.min(IDLE_ECHO_SAMPLE, sockets.length) }, async (_, i) => {
      const s = sockets[Math.floor((i * sockets.length) / IDLE_ECHO_SAMPLE)] as net.Socket;
      s.write('z');
      const b = await Promise.race([readExactly(s, 1), delay(5_000).then(() => undefined)]);
      if (b?.toString() === 'z') echoed++;
    }),
  );
  const counts = await world.appCounts();
  const mem = procMemory(agentPid);
  const agentMem = await world.agentMemory();

  for (const s of sockets) s.destroy();
  for (let i = 0; i < 100; i++) {
    if ((await world.agentMemory()).socks.active === 0) break;
    await delay(100);
  }
  await delay(IDLE_SETTLE_MS);
  const after = procMemory(agentPid);
  return {
    conns,
    opened: sockets.length,
    failed,
    ...(firstError ? { firstError } : {}),
    openSeconds,
    echoed,
    appOpen: counts.idleOpen,
    agentActive: agentMem.socks.active,
    baseRssKiB: base.rssKiB,
    rssKiB: mem.rssKiB,
    hwmKiB: mem.hwmKiB,
    baseHeap: baseMem.heapUsed,
    heap: agentMem.heapUsed,
    heapTotal: agentMem.heapTotal,
    newSpace: agentMem.heapSpaces.new_space ?? Number.NaN,
    oldSpace: agentMem.heapSpaces.old_space ?? Number.NaN,
    rssAfterCloseKiB: after.rssKiB,
    nofile: limits.map((l) => `${l.soft}/${l.hard}`).join(' '),
    ...(limitedBy ? { limitedBy } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------------

const DESCRIPTION: Record<Row, string> = {
  'path-bulk': 'one TCP stream, app → agent SOCKS5 → microtunnel (mTLS 1.3, HTTP/2) → edge → connector → server, download',
  'path-direct-tcp': 'the same download straight from the server over loopback TCP',
  'path-ttfb': 'small HTTP GET on a fresh connection through the path: TCP connect + SOCKS5 handshake + microtunnel open + request → first byte, serial',
  'path-ttfb-direct': 'the same GET straight to the server: TCP connect + request → first byte, serial',
  'path-reset': 'microtunnel opened to an echo app (SOCKS5, one byte echoed), then reset by the application (RST): cycles per second, serial',
  'path-close': 'the same microtunnel ended with a FIN both ways instead: cycles per second, serial',
  'path-idle-10k': 'agent resident memory (VmRSS) while holding idle tunneled connections, client in another process',
};


export const pathBenchmark: Benchmark = {
  name: 'path',
  description: 'one TCP stream, time to first byte and 10,000 idle connections through agent → edge → connector vs direct loopback TCP',
  rows: ROWS,
  async run(opts: BenchOptions): Promise<BenchResult[]> {
    const wanted = ROWS.filter((r) => matchesOnly(r, opts.only));
    if (wanted.length === 0) return [];
    const want = (...rows: Row[]): boolean => rows.some((r) => wanted.includes(r));
    const others = want('path-bulk', 'path-direct-tcp', 'path-ttfb', 'path-ttfb-direct', 'path-reset', 'path-close');
    // Every row measures the installed agent: `zcc agent`'s whole runtime, from a sealed state
    // (bench/world-runtime.ts). The memory row alone goes straight to its own world (below).
    let world = await startWorld({ runtime: true });
    const out: BenchResult[] = [];
    let maxLoad = 0;
    try {
      const { socksPort } = world.agent;
      const viaPath = (host: string, port: number): Connect => () => connectSocks(socksPort, host, port);
      const direct = (port: number): Connect => () => connectTcp(port);

      if (want('path-bulk', 'path-direct-tcp')) {
        const cases = {
          'path-bulk': viaPath(PATH_HOSTS.bulk, PATH_PORTS.bulk),
          'path-direct-tcp': direct(world.apps.ports.bulk),
        } as const;
        // Untimed warm-up (V8 tiering, TCP and HTTP/2 windows in every process), with an integrity
        // check: the bytes through the path are the bytes straight from the server.
        const warm = Math.min(WARMUP_BYTES, opts.bytes);
        const shaPath = (await bulkOnce(cases['path-bulk'], warm, true)).sha;
        const shaDirect = (await bulkOnce(cases['path-direct-tcp'], warm, true)).sha;
        if (shaPath !== shaDirect) throw new Error(`path-bulk: SHA-256 through the path ${shaPath ?? '?'} differs from direct ${shaDirect ?? '?'}`);
        const rates: Record<'path-bulk' | 'path-direct-tcp', number[]> = { 'path-bulk': [], 'path-direct-tcp': [] };
        // CPU each process used per second of transfer (1 = one core busy): who is the bottleneck.
        const procs = worldProcs(world);
        const cpu: Record<'path-bulk' | 'path-direct-tcp', Record<string, number[]>> = { 'path-bulk': {}, 'path-direct-tcp': {} };
        for (let i = 1; i <= opts.repeat; i++) {
          for (const row of ['path-bulk', 'path-direct-tcp'] as const) {
            maxLoad = Math.max(maxLoad, loadavg()[0] ?? 0);
            const before = cpuOf(procs);
            const { ns } = await bulkOnce(cases[row], opts.bytes, false);
            addPerUnit(cpu[row], before, cpuOf(procs), Number(ns) / 1e9);
            rates[row].push(mibPerSec(opts.bytes, ns));
            opts.log(`  [path ${i}/${opts.repeat}] ${row}: ${mibPerSec(opts.bytes, ns).toFixed(0)} MiB/s`);
          }
        }
        for (const row of ['path-bulk', 'path-direct-tcp'] as const) {
          if (!wanted.includes(row)) continue;
          const base = row === 'path-bulk' ? 'path-direct-tcp' : 'path-bulk';
          const own = rates[row];
          out.push(
            throughputRow(row, own, base, rates[base], opts.bytes, DESCRIPTION[row], {
              sha256Checked: `${round(warm / (1 << 20), 1)} MiB`,
              cpuCores: perRoleSummary(cpu[row], 2),
              loadAvg1mMax: round(maxLoad, 2),
              // Judged on the paired ratio (row and baseline seconds apart), the least drift-prone.
              ...(row === 'path-bulk' ? { target: TARGETS.bulkRatio, meetsTarget: median(own.map((v, i) => v / (rates[base][i] ?? Number.NaN))) >= TARGETS.bulkRatio } : {}),
              processes: row === 'path-bulk' ? 'client | agent | edge + connector | server' : 'client | server',
            }),
          );
        }
      }

      if (want('path-ttfb', 'path-ttfb-direct')) {
        const cases = {
          'path-ttfb': viaPath(PATH_HOSTS.http, PATH_PORTS.http),
          'path-ttfb-direct': direct(world.apps.ports.http),
        } as const;
        for (const row of ['path-ttfb', 'path-ttfb-direct'] as const) for (let i = 0; i < TTFB_WARMUP; i++) await ttfbOnce(cases[row]);
        const samples: Record<'path-ttfb' | 'path-ttfb-direct', number[][]> = { 'path-ttfb': [], 'path-ttfb-direct': [] };
        // CPU each process spent per connection (connect, GET, response, close): less at the
        // host's mercy than the wall-clock figures, so changes to the open path show here first.
        const procs = worldProcs(world);
        const cpuUs: Record<'path-ttfb' | 'path-ttfb-direct', Record<string, number[]>> = { 'path-ttfb': {}, 'path-ttfb-direct': {} };
        const sleeps: Record<'path-ttfb' | 'path-ttfb-direct', Record<string, number[]>> = { 'path-ttfb': {}, 'path-ttfb-direct': {} };
        for (let i = 1; i <= opts.repeat; i++) {
          for (const row of ['path-ttfb', 'path-ttfb-direct'] as const) {
            maxLoad = Math.max(maxLoad, loadavg()[0] ?? 0);
            const ms: number[] = [];
            const [cpu0, sleeps0] = [cpuOf(procs), sleepsOf(procs)];
            for (let j = 0; j < TTFB_PER_ROUND; j++) ms.push(await ttfbOnce(cases[row]));
            addPerUnit(cpuUs[row], cpu0, cpuOf(procs), TTFB_PER_ROUND / 1e6);
            addPerUnit(sleeps[row], sleeps0, sleepsOf(procs), TTFB_PER_ROUND);
            samples[row].push(ms);
            opts.log(`  [path ${i}/${opts.repeat}] ${row}: p50 ${percentile(ms, 50).toFixed(3)} ms, p99 ${percentile(ms, 99).toFixed(3)} ms`);
          }
        }
        const all = (row: 'path-ttfb' | 'path-ttfb-direct'): number[] => samples[row].flat();
        for (const row of ['path-ttfb', 'path-ttfb-direct'] as const) {
          if (!wanted.includes(row)) continue;
          const base = row === 'path-ttfb' ? 'path-ttfb-direct' : 'path-ttfb';
          const p50 = percentile(all(row), 50);
          const baseP50 = percentile(all(base), 50);
          out.push({
            bench: row,
            metric: 'p50Ms',
            value: round(p50, 3),
            unit: 'ms',
            better: 'lower',
            baseline: base,
            baselineValue: round(baseP50, 3),
            figures: {
              ...ttfbFigures(samples[row], samples[base], row === 'path-ttfb' ? TARGETS.setupOverheadMs : undefined),
              cpuUsPerOpen: perRoleSummary(cpuUs[row], 0),
              sleepsPerOpen: perRoleSummary(sleeps[row], 1),
              loadAvg1mMax: round(maxLoad, 2),
              processes: row === 'path-ttfb' ? 'client | agent | edge + connector | server' : 'client | server',
            },
            description: DESCRIPTION[row],
          });
        }
      }
      if (want('path-reset', 'path-close')) {
        // What a reset costs against a clean end: since stop 13 a reset of a client stream travels
        // as a control message the server answers with RST_STREAM, where it was one frame. The
        // next cycle starts while the last one's reset is still on its way, as with a browser that
        // aborts page loads: the rate and the CPU per cycle include all of it.
        const connect = viaPath(PATH_HOSTS.idle, PATH_PORTS.idle);
        const ends = { 'path-reset': 'reset', 'path-close': 'close' } as const;
        for (const row of ['path-reset', 'path-close'] as const) for (let i = 0; i < CYCLE_WARMUP; i++) await cycleOnce(connect, ends[row]);
        const procs = worldProcs(world);
        const rates: Record<'path-reset' | 'path-close', number[]> = { 'path-reset': [], 'path-close': [] };
        const cpuUs: Record<'path-reset' | 'path-close', Record<string, number[]>> = { 'path-reset': {}, 'path-close': {} };
        for (let i = 1; i <= opts.repeat; i++) {
          for (const row of ['path-reset', 'path-close'] as const) {
            maxLoad = Math.max(maxLoad, loadavg()[0] ?? 0);
            const cpu0 = cpuOf(procs);
            const t = startTimer();
            for (let j = 0; j < CYCLES_PER_ROUND; j++) await cycleOnce(connect, ends[row]);
            const perSec = CYCLES_PER_ROUND / (Number(t.ns()) / 1e9);
            addPerUnit(cpuUs[row], cpu0, cpuOf(procs), CYCLES_PER_ROUND / 1e6);
            rates[row].push(perSec);
            opts.log(`  [path ${i}/${opts.repeat}] ${row}: ${perSec.toFixed(0)} cycles/s`);
          }
        }
        // The agent's Z-Tunnel outlived the resets (nghttp2 tears a session down past 1,000
        // RST_STREAMs from its client in a burst): one more microtunnel through it works.
        await cycleOnce(connect, 'close');
        for (const row of ['path-reset', 'path-close'] as const) {
          if (!wanted.includes(row)) continue;
          const base = row === 'path-reset' ? 'path-close' : 'path-reset';
          out.push({
            bench: row,
            metric: 'cyclesPerSec',
            value: round(median(rates[row]), 0),
            unit: 'cycles/s',
            better: 'higher',
            baseline: base,
            baselineValue: round(median(rates[base]), 0),
            figures: {
              pairedRatio: round(median(rates[row].map((v, i) => v / (rates[base][i] ?? Number.NaN))), 3),
              cycles: CYCLES_PER_ROUND * opts.repeat,
              cpuUsPerCycle: perRoleSummary(cpuUs[row], 0),
              loadAvg1mMax: round(maxLoad, 2),
              processes: 'client | agent | edge + connector | server',
            },
            description: DESCRIPTION[row],
          });
        }
      }
      // Idle last, in a world of its own: the agent is fresh, so its 0-connection baseline is
      // not inflated by buffers the bulk transfers left behind; and no row runs after it: after
      // 10,000 connections this process (the client) ran direct TCP at 600-900 MiB/s instead of
      // 1.3-1.8 GB/s, which flattered the path's ratio.
      if (want('path-idle-10k')) {
        if (others) {
          await world.stop();
          world = await startWorld({ runtime: true });
        }
        maxLoad = Math.max(maxLoad, loadavg()[0] ?? 0);
        const r = await idleCase(world, opts.conns ?? IDLE_CONNS, opts.log);
        const tsxKiB = await tsxLoaderKiB();
        const mb = (kib: number): number => round(kib * KIB_TO_MB, 1);
        if (r.opened < r.conns || r.echoed < Math.min(IDLE_ECHO_SAMPLE, r.opened) || r.appOpen < r.opened) {
          opts.log(`  [path] idle: WARNING opened ${r.opened}/${r.conns}, echoed ${r.echoed}, app holds ${r.appOpen} (${r.firstError ?? 'no error'})`);
        }
        const rssMB = r.rssKiB * KIB_TO_MB;
        out.push({
          bench: 'path-idle-10k',
          metric: 'rssMB',
          value: round(rssMB, 1),
          unit: 'MB',
          better: 'lower',
          baseline: 'agent-0-conns',
          baselineValue: mb(r.baseRssKiB),
          figures: {
            conns: r.conns,
            opened: r.opened,
            failed: r.failed,
            ...(r.firstError ? { firstError: r.firstError } : {}),
            echoedSample: `${r.echoed}/${Math.min(IDLE_ECHO_SAMPLE, r.opened)}`,
            appHolds: r.appOpen,
            agentSocksActive: r.agentActive,
            deltaMB: mb(r.rssKiB - r.baseRssKiB),
            perConnKiB: round((r.rssKiB - r.baseRssKiB) / Math.max(1, r.opened), 2),
            peakRssMB: mb(r.hwmKiB),
            heapMB: round(r.heap / 1e6, 1),
            baselineHeapMB: round(r.baseHeap / 1e6, 1),
            // Committed V8 heap: what of the RSS is JavaScript heap, live or not yet collected.
            heapCommittedMB: round(r.heapTotal / 1e6, 1),
            newSpaceMB: round(r.newSpace / 1e6, 1),
            oldSpaceMB: round(r.oldSpace / 1e6, 1),
            rssAfterCloseMB: mb(r.rssAfterCloseKiB),
            openSeconds: round(r.openSeconds, 2),
            opensPerSec: round(r.opened / r.openSeconds, 0),
            nofileSoftHard: r.nofile,
            agentRuntime: `zcc agent's runtime from a sealed state, bundled on plain node, ${serviceNodeOptions().join(' ') || 'no NODE_OPTIONS'}`,
            tsxLoaderMB: mb(tsxKiB),
            loadAvg1mMax: round(Math.max(maxLoad, loadavg()[0] ?? 0), 2),
            ...(r.limitedBy ? { limitedBy: r.limitedBy } : {}),
            target: TARGETS.idleRssMB,
            meetsTarget: r.opened === r.conns && r.conns >= IDLE_CONNS && rssMB < TARGETS.idleRssMB,
            processes: 'client | agent | edge + connector | idle echo server',
          },
          description: DESCRIPTION['path-idle-10k'],
        });
      }
      return out;
    } finally {
      await world.stop();
    }
  },
};
