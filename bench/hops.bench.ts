// What a relay hop costs on this machine, in Node and in native code. The zero-trust path has
// three relay hops (agent, edge, connector); these rows are the floor each kind of hop puts under
// the path's figures, and so what a native data plane could win.
//
// Time to first byte: the same small HTTP GET as `path-ttfb` on a fresh connection through three
// plain TCP relays (no TLS, no HTTP/2, no policy), each a process of its own, against the GET
// straight to the server.
//
//   hops-node-3   client → 3 × Node relay (bench/hops-relay.ts, bundled) → app
//   hops-c-3      client → 3 × C relay (bench/native/relay.c, built with the system's cc) → app
//   hops-direct   client → app
//
// Bulk: the `path-bulk` download through three relays with the path's crypto legs, relay 1 → 2
// and 2 → 3 in mutual TLS 1.3 (AES-128-GCM), one TLS connection per relayed connection (no
// HTTP/2, no multiplexing), against the download straight from the server.
//
//   hops-node-tls-bulk  client → Node relay (tcp → tls) → (tls → tls) → (tls → tcp) → app
//   hops-c-tls-bulk     the same with bench/native/relay.c
//   hops-direct-bulk    client → app
//
// Rounds interleaved; 300 serial GETs per TTFB row and round after 500 unmeasured; bulk rows
// move --size MiB per round after an untimed transfer checked by SHA-256 against direct. The C
// rows need a C compiler and OpenSSL's headers (Debian libssl-dev); without them they print why
// and are left out.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BENCH_CACHE, bundleEntry } from './bundle.js';
import {
  addPerUnit,
  cpuOf,
  forkTs,
  isMessage,
  makeTlsMaterial,
  matchesOnly,
  mibPerSec,
  nextMessage,
  percentile,
  perRoleSummary,
  round,
  stopChild,
  throughputRow,
  ttfbFigures,
  type BenchOptions,
  type BenchResult,
  type Benchmark,
} from './lib.js';
import { bulkOnce, connectTcp, ttfbOnce, WARMUP_BYTES } from './path.bench.js';
import type { AppsReady } from './world-apps.js';

const TTFB_ROWS = ['hops-node-3', 'hops-c-3', 'hops-direct'] as const;
const BULK_ROWS = ['hops-node-tls-bulk', 'hops-c-tls-bulk', 'hops-direct-bulk'] as const;
const ROWS = [...TTFB_ROWS, ...BULK_ROWS] as const;
type TtfbRow = (typeof TTFB_ROWS)[number];
type BulkRow = (typeof BULK_ROWS)[number];
type Row = (typeof ROWS)[number];
const HOPS = 3;
const PER_ROUND = 300;
const WARMUP = 500;
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

const DESCRIPTION: Record<Row, string> = {
  'hops-node-3': 'small HTTP GET on a fresh connection through 3 plain TCP relays in Node (net sockets piped), each its own process: connect → first byte, serial',
  'hops-c-3': 'the same through 3 plain TCP relays in C (epoll, one thread), each its own process',
  'hops-direct': 'the same GET straight to the server',
  'hops-node-tls-bulk': 'one TCP stream downloads through 3 Node relays, the 2 links between them mutual TLS 1.3 (tcp → tls, tls → tls, tls → tcp), each its own process',
  'hops-c-tls-bulk': 'the same through 3 C relays (OpenSSL, epoll, one thread)',
  'hops-direct-bulk': 'the same download straight from the server',
};

/** The TLS side of each relay of a chain, in the path's order: agent, edge, connector. */
const TLS_CHAIN = [
  ['tcp', 'tls'],
  ['tls', 'tls'],
  ['tls', 'tcp'],
] as const;

/** Builds the C relay; undefined (and why) when it cannot be built. */
function buildCRelay(rows: string, log: (s: string) => void): string | undefined {
  mkdirSync(BENCH_CACHE, { recursive: true });
  const out = join(BENCH_CACHE, 'relay');
  const r = spawnSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', out, here('./native/relay.c'), '-lssl', '-lcrypto'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    log(`  [hops] ${rows} skipped: cannot build bench/native/relay.c (${r.error?.message ?? r.stderr.trim()})`);
    return undefined;
  }
  return out;
}

/** A throwaway CA and leaves for the TLS relays, as files (keys 0600) in a directory of its own. */
function tlsDir(): { dir: string; remove(): void } {
  const m = makeTlsMaterial();
  const dir = mkdtempSync(join(tmpdir(), 'zcc-bench-hops-'));
  const files = { 'ca.crt': m.ca, 'server.crt': m.serverCert, 'server.key': m.serverKey, 'client.crt': m.clientCert, 'client.key': m.clientKey };
  for (const [f, pem] of Object.entries(files)) writeFileSync(join(dir, f), pem, { mode: 0o600 });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts a C relay (`args` after the binary); resolves with the process and the port it listens on. */
async function startCRelay(binary: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(binary, ['0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`C relay exited (${code ?? 'signal'}) before listening`)));
    lines.once('line', (l) => resolve(Number(/^READY (\d+)$/.exec(l)?.[1] ?? Number.NaN)));
  });
  return { child, port };
}

/** A relay process started towards `upstream` with the relay's own arguments after it. */
type StartRelay = (upstream: number, sides: readonly string[]) => Promise<{ child: ChildProcess; port: number }>;

/** The relays of a chain by the role they stand in for, in path order. */
const ROLES = ['agent', 'edge', 'connector'] as const;

/**
 * Starts three relays ending at `target` (the first one listed is the one the client dials);
 * `sides` gives each its extra arguments, in path order. Returns the port the client dials and
 * each relay's PID by role.
 */
async function chain(start: StartRelay, target: number, sides: readonly (readonly string[])[], children: ChildProcess[]): Promise<{ port: number; pids: Record<string, number> }> {
  let port = target;
  const pid: number[] = [];
  for (let i = HOPS - 1; i >= 0; i--) {
    const relay = await start(port, sides[i] ?? []);
    children.push(relay.child);
    pid[i] = relay.child.pid ?? 0;
    port = relay.port;
  }
  return { port, pids: Object.fromEntries(ROLES.map((role, i) => [role, pid[i] ?? 0])) };
}

/** Runs the TTFB rows against their entry ports; `procs` are each row's processes by role. */
async function ttfbRows(entry: Partial<Record<TtfbRow, number>>, procs: Partial<Record<TtfbRow, Record<string, number>>>, wanted: readonly Row[], opts: BenchOptions): Promise<BenchResult[]> {
  const rows = TTFB_ROWS.filter((r) => entry[r] !== undefined);
  const samples: Partial<Record<TtfbRow, number[][]>> = {};
  const cpu: Partial<Record<TtfbRow, Record<string, number[]>>> = {};
  for (const row of rows) for (let i = 0; i < WARMUP; i++) await ttfbOnce(() => connectTcp(entry[row] as number));
  for (let round = 1; round <= opts.repeat; round++) {
    for (const row of rows) {
      const ms: number[] = [];
      const pids = { client: process.pid, ...procs[row] };
      const before = cpuOf(pids);
      for (let i = 0; i < PER_ROUND; i++) ms.push(await ttfbOnce(() => connectTcp(entry[row] as number)));
      addPerUnit((cpu[row] ??= {}), before, cpuOf(pids), PER_ROUND / 1e6);
      (samples[row] ??= []).push(ms);
      opts.log(`  [hops ${round}/${opts.repeat}] ${row}: p50 ${percentile(ms, 50).toFixed(3)} ms`);
    }
  }
  const direct = samples['hops-direct'] ?? [];
  return rows
    .filter((row) => wanted.includes(row))
    .map((row): BenchResult => {
      const own = samples[row] ?? [];
      const base = row === 'hops-direct' ? (samples['hops-node-3'] ?? []) : direct;
      const overheadMs = percentile(own.flat(), 50) - percentile(direct.flat(), 50);
      const relayed: Record<string, number> = row === 'hops-direct' ? {} : { overheadP50Ms: round(overheadMs, 3), perHopUs: round((overheadMs * 1000) / HOPS, 0) };
      return {
        bench: row,
        metric: 'p50Ms',
        value: round(percentile(own.flat(), 50), 3),
        unit: 'ms',
        better: 'lower',
        baseline: row === 'hops-direct' ? 'hops-node-3' : 'hops-direct',
        baselineValue: round(percentile(base.flat(), 50), 3),
        figures: { ...ttfbFigures(own, base), ...relayed, cpuUsPerOpen: perRoleSummary(cpu[row] ?? {}, 0) },
        description: DESCRIPTION[row],
      };
    });
}

/** Runs the bulk rows against their entry ports; `procs` are each chain's relay PIDs by role. */
async function bulkRows(entry: Partial<Record<BulkRow, number>>, procs: Partial<Record<BulkRow, Record<string, number>>>, wanted: readonly Row[], opts: BenchOptions): Promise<BenchResult[]> {
  const rows = BULK_ROWS.filter((r) => entry[r] !== undefined);
  const connect = (row: BulkRow) => () => connectTcp(entry[row] as number);
  // Untimed warm-up with an integrity check: what the relays delivered is what the server sent.
  const warm = Math.min(WARMUP_BYTES, opts.bytes);
  const direct = (await bulkOnce(connect('hops-direct-bulk'), warm, true)).sha;
  for (const row of rows) {
    const sha = (await bulkOnce(connect(row), warm, true)).sha;
    if (sha !== direct) throw new Error(`${row}: SHA-256 through the relays ${sha ?? '?'} differs from direct ${direct ?? '?'}`);
  }
  const rates: Partial<Record<BulkRow, number[]>> = {};
  const cpu: Partial<Record<BulkRow, Record<string, number[]>>> = {};
  for (let round = 1; round <= opts.repeat; round++) {
    for (const row of rows) {
      const pids = { client: process.pid, ...procs[row] };
      const before = cpuOf(pids);
      const { ns } = await bulkOnce(connect(row), opts.bytes, false);
      addPerUnit((cpu[row] ??= {}), before, cpuOf(pids), Number(ns) / 1e9);
      (rates[row] ??= []).push(mibPerSec(opts.bytes, ns));
      opts.log(`  [hops ${round}/${opts.repeat}] ${row}: ${mibPerSec(opts.bytes, ns).toFixed(0)} MiB/s`);
    }
  }
  return rows
    .filter((row) => wanted.includes(row))
    .map((row): BenchResult => {
      const base: BulkRow = row === 'hops-direct-bulk' ? 'hops-node-tls-bulk' : 'hops-direct-bulk';
      return throughputRow(row, rates[row] ?? [], base, rates[base] ?? [], opts.bytes, DESCRIPTION[row], {
        sha256Checked: `${round(warm / (1 << 20), 1)} MiB`,
        cpuCores: perRoleSummary(cpu[row] ?? {}, 2),
      });
    });
}

export const hopsBenchmark: Benchmark = {
  name: 'hops',
  description: 'the floor relay hops put under the path: 3 plain TCP relays (time to first byte) and 3 relays with the path\'s TLS links (bulk), in Node and in C, vs direct',
  rows: ROWS,
  async run(opts: BenchOptions): Promise<BenchResult[]> {
    const wanted = ROWS.filter((r) => matchesOnly(r, opts.only));
    if (wanted.length === 0) return [];
    const wants = (rows: readonly Row[]): boolean => rows.some((r) => wanted.includes(r));
    const children: ChildProcess[] = [];
    const relayBundle = await bundleEntry(here('./hops-relay.ts'));
    const material = wants(BULK_ROWS) ? tlsDir() : undefined;
    const startNode: StartRelay = async (upstream, sides) => {
      const child = fork(relayBundle.file, [String(upstream), ...sides], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      return { child, port: (await nextMessage(child, isMessage<{ type: 'relay'; port: number }>('relay'))).port };
    };
    try {
      const apps = forkTs(here('./world-apps.ts'));
      children.push(apps);
      const { ports } = await nextMessage(apps, isMessage<AppsReady>('apps'));
      const results: BenchResult[] = [];
      const cRows = wanted.filter((r) => r === 'hops-c-3' || r === 'hops-c-tls-bulk');
      const binary = cRows.length > 0 ? buildCRelay(cRows.join(', '), opts.log) : undefined;
      if (wants(TTFB_ROWS)) {
        const entry: Partial<Record<TtfbRow, number>> = { 'hops-direct': ports.http };
        const procs: Partial<Record<TtfbRow, Record<string, number>>> = { 'hops-direct': { apps: apps.pid ?? 0 } };
        const node = await chain(startNode, ports.http, [], children);
        entry['hops-node-3'] = node.port;
        procs['hops-node-3'] = { ...node.pids, apps: apps.pid ?? 0 };
        if (binary && wanted.includes('hops-c-3')) {
          const c = await chain((up) => startCRelay(binary, [String(up)]), ports.http, [], children);
          entry['hops-c-3'] = c.port;
          procs['hops-c-3'] = { ...c.pids, apps: apps.pid ?? 0 };
        }
        results.push(...(await ttfbRows(entry, procs, wanted, opts)));
      }
      if (material) {
        const sides = TLS_CHAIN.map((s) => [...s, material.dir]);
        const entry: Partial<Record<BulkRow, number>> = { 'hops-direct-bulk': ports.bulk };
        const procs: Partial<Record<BulkRow, Record<string, number>>> = { 'hops-direct-bulk': { apps: apps.pid ?? 0 } };
        const node = await chain(startNode, ports.bulk, sides, children);
        entry['hops-node-tls-bulk'] = node.port;
        procs['hops-node-tls-bulk'] = { ...node.pids, apps: apps.pid ?? 0 };
        if (binary && wanted.includes('hops-c-tls-bulk')) {
          const c = await chain((up, sideArgs) => startCRelay(binary, [String(up), ...sideArgs]), ports.bulk, sides, children);
          entry['hops-c-tls-bulk'] = c.port;
          procs['hops-c-tls-bulk'] = { ...c.pids, apps: apps.pid ?? 0 };
        }
        results.push(...(await bulkRows(entry, procs, wanted, opts)));
      }
      return results;
    } finally {
      for (const c of children.reverse()) {
        if (c.connected) await stopChild(c);
        else c.kill();
      }
      relayBundle.remove();
      material?.remove();
    }
  },
};
