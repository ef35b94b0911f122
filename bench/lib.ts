// Shared plumbing for `zcc-bench`: the Benchmark contract, ephemeral mutual-TLS material for
// loopback, counting byte sources/sinks that respect backpressure, timing and statistics, and a
// helper to fork TypeScript child processes (so sender and receiver each get their own core).
import { execFileSync } from 'node:child_process';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { createSecureContext, type ConnectionOptions, type SecureContext, type TlsOptions } from 'node:tls';

// ---------------------------------------------------------------------------------------------
// Benchmark contract
// ---------------------------------------------------------------------------------------------

export interface BenchOptions {
  /** Bytes moved per throughput measurement (total over all streams of one measurement). */
  bytes: number;
  /** Size of each write on the sending side. */
  writeSize: number;
  /** Measured rounds; every case runs once per round, cases interleaved, medians reported. */
  repeat: number;
  /** Row names (or prefixes ending in `*`) to report; empty = all. Baselines always run. */
  only: string[];
  /** Progress lines go here (stderr), so stdout stays clean for --json. */
  log: (line: string) => void;
  /** Length of each timed phase of rate benchmarks (dns), in seconds; their default when unset. */
  seconds?: number;
  /** Concurrent idle connections of the path benchmark's memory row; its default when unset. */
  conns?: number;
}

/** One reported row: a primary figure and the baseline measured in the same run. */
export interface BenchResult {
  bench: string;
  /** JSON key of the primary figure, e.g. `mibPerSec`, `p50Ms`, `streamsPerSec`. */
  metric: string;
  value: number;
  unit: string;
  better: 'higher' | 'lower';
  /** Name of the baseline row, measured in the same run. */
  baseline: string;
  baselineValue: number;
  /** Secondary figures copied verbatim into the JSON line. */
  figures: Record<string, number | string | boolean>;
  description: string;
}

export interface Benchmark {
  name: string;
  description: string;
  /** Row names this benchmark can produce (for `--only` and `--list`). */
  rows: readonly string[];
  run(opts: BenchOptions): Promise<BenchResult[]>;
}

export function ratioOf(r: BenchResult): number {
  return r.baselineValue === 0 ? Number.NaN : r.value / r.baselineValue;
}

/** Flattens a result into the one-line JSON object printed by `--json`. */
export function toJsonRecord(r: BenchResult): Record<string, number | string | boolean> {
  const cap = r.metric.charAt(0).toUpperCase() + r.metric.slice(1);
  return {
    bench: r.bench,
    [r.metric]: round(r.value, 3),
    unit: r.unit,
    better: r.better,
    ...r.figures,
    baseline: r.baseline,
    [`baseline${cap}`]: round(r.baselineValue, 3),
    ratio: round(ratioOf(r), 3),
  };
}

export function matchesOnly(name: string, only: readonly string[]): boolean {
  if (only.length === 0) return true;
  return only.some((o) => (o.endsWith('*') ? name.startsWith(o.slice(0, -1)) : name === o));
}

// ---------------------------------------------------------------------------------------------
// Ephemeral TLS 1.3 material (CA + server leaf + client leaf, ECDSA P-256) for loopback
// ---------------------------------------------------------------------------------------------

export interface TlsMaterial {
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
}

/** Generates a throwaway CA and two leaves with openssl into a temp dir, then deletes the dir. */
export function makeTlsMaterial(): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'zcc-bench-tls-'));
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  try {
    ssl('req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
      '-subj', '/CN=zcc-bench-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign');
    const leaf = (name: string, cn: string, ext: string): void => {
      writeFileSync(join(dir, `${name}.ext`), ext);
      ssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
        '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
    };
    leaf('server', 'zcc-bench-broker',
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' +
      'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    leaf('client', 'zcc-bench-connector',
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
    return {
      ca: read('ca.crt'),
      serverKey: read('server.key'),
      serverCert: read('server.crt'),
      clientKey: read('client.key'),
      clientCert: read('client.crt'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Server side of mutual TLS 1.3: a client certificate from our CA is required. */
export function tlsServerOptions(m: TlsMaterial): TlsOptions {
  return {
    key: m.serverKey,
    cert: m.serverCert,
    ca: m.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
}

const clientContexts = new WeakMap<TlsMaterial, SecureContext>();

/**
 * Client side of mutual TLS 1.3 to 127.0.0.1:port. The SecureContext (key, chain, trust store)
 * is built once and reused, as a real connector would; building it per connection costs more
 * than the handshake itself and would make the per-connection baselines look worse than they are.
 */
export function tlsClientOptions(m: TlsMaterial, port: number): ConnectionOptions {
  let secureContext = clientContexts.get(m);
  if (secureContext === undefined) {
    secureContext = createSecureContext({
      key: m.clientKey,
      cert: m.clientCert,
      ca: m.ca,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    });
    clientContexts.set(m, secureContext);
  }
  return {
    host: '127.0.0.1',
    port,
    secureContext,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
}

// ---------------------------------------------------------------------------------------------
// Counting byte source and sink
// ---------------------------------------------------------------------------------------------

/** Anything that accepts chunks and signals backpressure: a Node Writable, a yamux stream... */
export interface ChunkTarget {
  /** Returns false when the caller must wait for `drain()` before writing more. */
  write(chunk: Uint8Array): boolean;
  drain(): Promise<void>;
}

export function writableTarget(w: Writable): ChunkTarget {
  return {
    write: (c) => w.write(c),
    drain: async () => {
      await once(w, 'drain');
    },
  };
}

/** One reusable, never-mutated payload chunk (contents do not matter, only their count). */
export function payloadChunk(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/**
 * Counting byte source: writes `bytes` bytes as `chunk`-sized writes and waits for `drain`
 * whenever the target says so, so at most one write beyond the high-water mark is buffered.
 * Returns the number of bytes written.
 */
export async function sendBytes(target: ChunkTarget, bytes: number, chunk: Uint8Array): Promise<number> {
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, chunk.byteLength);
    const ok = target.write(n === chunk.byteLength ? chunk : chunk.subarray(0, n));
    left -= n;
    if (!ok && left > 0) await target.drain();
  }
  return bytes;
}

/** Counting byte sink: consumes a Readable in flowing mode, resolves with the byte count at 'end'. */
export function countReadable(r: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    r.on('data', (c: Buffer) => {
      n += c.length;
    });
    r.once('end', () => resolve(n));
    r.once('error', reject);
  });
}

export function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

// ---------------------------------------------------------------------------------------------
// Timing and statistics
// ---------------------------------------------------------------------------------------------

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

export interface Timer {
  ns(): bigint;
  ms(): number;
  seconds(): number;
}

export function startTimer(): Timer {
  const t0 = process.hrtime.bigint();
  const ns = (): bigint => process.hrtime.bigint() - t0;
  return { ns, ms: () => Number(ns()) / 1e6, seconds: () => Number(ns()) / 1e9 };
}

export function mibPerSec(bytes: number, ns: bigint | number): number {
  return bytes / (1 << 20) / (Number(ns) / 1e9);
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export function round(x: number, digits: number): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The figures of a throughput row: per-round rates against its baseline's, rounds paired by index. */
export function throughputFigures(own: readonly number[], base: readonly number[], bytes: number): Record<string, number> {
  return {
    minMibPerSec: round(Math.min(...own), 1),
    maxMibPerSec: round(Math.max(...own), 1),
    runs: own.length,
    mib: round(bytes / (1 << 20), 1),
    streams: 1,
    pairedRatio: round(median(own.map((v, i) => v / (base[i] ?? Number.NaN))), 3),
  };
}

/**
 * A throughput row (MiB/s, higher is better): the medians of its per-round rates and of its
 * baseline's, the paired figures, then `figures` of its own.
 */
export function throughputRow(
  bench: string,
  own: readonly number[],
  baseline: string,
  base: readonly number[],
  bytes: number,
  description: string,
  figures: BenchResult['figures'] = {},
): BenchResult {
  return {
    bench,
    metric: 'mibPerSec',
    value: round(median(own), 1),
    unit: 'MiB/s',
    better: 'higher',
    baseline,
    baselineValue: round(median(base), 1),
    figures: { ...throughputFigures(own, base, bytes), ...figures },
    description,
  };
}

/**
 * The figures of a time-to-first-byte row from its samples per round and its baseline's. With
 * `target` (ms), the row is the path: it gets the p50 and p99 overhead over the baseline and
 * whether the p50 overhead is under the target.
 */
export function ttfbFigures(own: readonly number[][], base: readonly number[][], target?: number): Record<string, number | string | boolean> {
  const all = own.flat();
  const other = base.flat();
  const overhead = percentile(all, 50) - percentile(other, 50);
  return {
    p90Ms: round(percentile(all, 90), 3),
    p99Ms: round(percentile(all, 99), 3),
    maxMs: round(Math.max(...all), 3),
    opens: all.length,
    baselineP99Ms: round(percentile(other, 99), 3),
    pairedRatio: round(median(own.map((ms, i) => percentile(ms, 50) / percentile(base[i] ?? [], 50))), 3),
    ...(target !== undefined
      ? {
          overheadP50Ms: round(overhead, 3),
          overheadP99Ms: round(percentile(all, 99) - percentile(other, 99), 3),
          target: `overhead p50 < ${target} ms`,
          meetsTarget: overhead < target,
        }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/** Forks a TypeScript module (run through tsx) with an IPC channel; stdout/stderr inherited. */
export function forkTs(modulePath: string, args: string[] = []): ChildProcess {
  return fork(modulePath, args, {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** An IPC message guard: accepts the messages whose `type` is `type`. */
export const isMessage =
  <T extends { type: string }>(type: T['type']) =>
  (m: unknown): m is T =>
    typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;

/** Waits for the next IPC message of a child accepted by `accept`; rejects if the child dies. */
export function nextMessage<T>(child: ChildProcess, accept: (m: unknown) => m is T, timeoutMs = 120_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const onMessage = (m: unknown): void => {
      if (!accept(m)) return;
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup();
      reject(new Error(`child ${child.pid ?? '?'} exited (code ${String(code)}, signal ${String(signal)})`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`child ${child.pid ?? '?'} sent no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** Ends a child we forked: asks it to exit over IPC, then SIGKILLs it if it lingers. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (child.connected) child.send({ type: 'exit' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/**
 * CPU time a process has used so far, in seconds: the sum of its threads' run time from
 * /proc/PID/task/TID/schedstat (nanoseconds). /proc/PID/stat counts in clock ticks (10 ms),
 * too coarse for a few hundred connection opens.
 */
export function procCpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between the listing and the read: its time is gone with it.
    }
  }
  return ns / 1e9;
}

/** CPU seconds used so far by each process of `procs`. */
export function cpuOf(procs: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(procs).map(([role, pid]) => [role, procCpuSeconds(pid)]));
}

/**
 * Times each process's event-loop thread has gone to sleep so far (voluntary context switches
 * of the main thread). Each one is a wake-up to pay later, which costs 50-150 µs of latency on
 * these VMs: a figure that explains time to first byte and does not drift with the host.
 */
export function sleepsOf(procs: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(procs).map(([role, pid]) => [role, Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN)]),
  );
}

/** Appends each process's growth between two readings, divided by `per`, to `into[role]`. */
export function addPerUnit(into: Record<string, number[]>, before: Record<string, number>, after: Record<string, number>, per: number): void {
  for (const [role, t] of Object.entries(after)) (into[role] ??= []).push((t - (before[role] ?? t)) / per);
}

/** "client 0.41, agent 1.52, ...": the median of each role's figures. */
export function perRoleSummary(byRole: Record<string, number[]>, digits: number): string {
  return Object.entries(byRole)
    .map(([role, v]) => `${role} ${median(v).toFixed(digits)}`)
    .join(', ');
}

/** /proc reports kB (KiB); figures are printed in MB. */
export const KIB_TO_MB = 1024 / 1e6;
