// What a relay hop costs on this machine, in Node and in native code: the same small HTTP GET as
// `path-ttfb` on a fresh connection through three plain TCP relays (no TLS, no HTTP/2, no
// policy), each a process of its own, against the GET straight to the server. The zero-trust
// path has three relay hops too (agent, edge, connector); this is the floor each kind of hop
// puts under its time to first byte, and so what a native data plane could win.
//
//   hops-node-3   client → 3 × Node relay (bench/hops-relay.ts, bundled) → app
//   hops-c-3      client → 3 × C relay (bench/native/tcp-relay.c, built with the system's cc) → app
//   hops-direct   client → app
//
// Rounds interleaved, 300 serial GETs each after 500 unmeasured. The C row needs a C compiler;
// without one it prints why and is left out.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BENCH_CACHE, bundleEntry } from './bundle.js';
import { forkTs, isMessage, matchesOnly, nextMessage, percentile, round, stopChild, ttfbFigures, type BenchOptions, type BenchResult, type Benchmark } from './lib.js';
import { connectTcp, ttfbOnce } from './path.bench.js';
import type { AppsReady } from './world-apps.js';

const ROWS = ['hops-node-3', 'hops-c-3', 'hops-direct'] as const;
type Row = (typeof ROWS)[number];
const HOPS = 3;
const PER_ROUND = 300;
const WARMUP = 500;
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

const DESCRIPTION: Record<Row, string> = {
  'hops-node-3': 'small HTTP GET on a fresh connection through 3 plain TCP relays in Node (net sockets piped), each its own process: connect → first byte, serial',
  'hops-c-3': 'the same through 3 plain TCP relays in C (epoll, one thread), each its own process',
  'hops-direct': 'the same GET straight to the server',
};

/** Builds the C relay; undefined (and why) when there is no compiler. */
function buildCRelay(log: (s: string) => void): string | undefined {
  mkdirSync(BENCH_CACHE, { recursive: true });
  const out = join(BENCH_CACHE, 'tcp-relay');
  const r = spawnSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', out, here('./native/tcp-relay.c')], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    log(`  [hops] hops-c-3 skipped: cannot build the C relay (${r.error?.message ?? r.stderr.trim()})`);
    return undefined;
  }
  return out;
}

/** Starts a C relay to `upstream`; resolves with the process and the port it listens on. */
async function startCRelay(binary: string, upstream: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(binary, ['0', String(upstream)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`C relay exited (${code ?? 'signal'}) before listening`)));
    lines.once('line', (l) => resolve(Number(/^READY (\d+)$/.exec(l)?.[1] ?? Number.NaN)));
  });
  return { child, port };
}

export const hopsBenchmark: Benchmark = {
  name: 'hops',
  description: 'the floor a relay hop puts under time to first byte: 3 plain TCP relays in Node and in C vs direct',
  rows: ROWS,
  async run(opts: BenchOptions): Promise<BenchResult[]> {
    const wanted = ROWS.filter((r) => matchesOnly(r, opts.only));
    if (wanted.length === 0) return [];
    const children: ChildProcess[] = [];
    const relayBundle = await bundleEntry(here('./hops-relay.ts'));
    try {
      const apps = forkTs(here('./world-apps.ts'));
      children.push(apps);
      const { ports } = await nextMessage(apps, isMessage<AppsReady>('apps'));
      // Each chain ends at the app: relay 1 → relay 2 → relay 3 → app.
      let nodePort = ports.http;
      for (let i = 0; i < HOPS; i++) {
        const relay = fork(relayBundle.file, [String(nodePort)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(relay);
        nodePort = (await nextMessage(relay, isMessage<{ type: 'relay'; port: number }>('relay'))).port;
      }
      const binary = wanted.includes('hops-c-3') ? buildCRelay(opts.log) : undefined;
      let cPort: number | undefined;
      if (binary) {
        cPort = ports.http;
        for (let i = 0; i < HOPS; i++) {
          const relay = await startCRelay(binary, cPort);
          children.push(relay.child);
          cPort = relay.port;
        }
      }
      const entry: Partial<Record<Row, number>> = { 'hops-node-3': nodePort, 'hops-direct': ports.http, ...(cPort ? { 'hops-c-3': cPort } : {}) };
      const rows = ROWS.filter((r) => entry[r] !== undefined);
      const samples: Partial<Record<Row, number[][]>> = {};
      for (const row of rows) for (let i = 0; i < WARMUP; i++) await ttfbOnce(() => connectTcp(entry[row] as number));
      for (let round = 1; round <= opts.repeat; round++) {
        for (const row of rows) {
          const ms: number[] = [];
          for (let i = 0; i < PER_ROUND; i++) ms.push(await ttfbOnce(() => connectTcp(entry[row] as number)));
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
            figures: { ...ttfbFigures(own, base), ...relayed },
            description: DESCRIPTION[row],
          };
        });
    } finally {
      for (const c of children.reverse()) {
        if (c.connected) await stopChild(c);
        else c.kill();
      }
      relayBundle.remove();
    }
  },
};
