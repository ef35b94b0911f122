// UDP DNS load generator of the `dns` benchmark, in a process of its own (forked by
// dns.bench.ts) so it never shares an event loop with the server it measures.
//
// Closed loop: `window` queries outstanding at all times over one UDP socket; each answer (ids
// matched) sends the next query, round-robin over the name list. A query unanswered after
// `lossTimeoutMs` counts as lost and its slot is refilled. Queries are built once with
// dns-packet (A, recursion desired, no EDNS: what a glibc stub sends) and only their ID is
// rewritten. Every answer is checked: NOERROR, an answer record, and the question it was sent
// for; every 64th is decoded in full and its A record checked against the expected prefix.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import dnsPacket from 'dns-packet';
import { procCpuSeconds } from './lib.js';

export interface LoadRequest {
  type: 'run';
  target: { host: string; port: number };
  names: string[];
  /** Outstanding queries; 1 measures unloaded (serial) latency. */
  window: number;
  /** Timed phase; preceded by an untimed warm-up of `warmupSeconds`. */
  seconds: number;
  warmupSeconds: number;
  /** Or stop the timed phase after this many answers (serial runs). */
  maxAnswers?: number;
  /** Every A record must start with this (e.g. "100." for synthetic IPs). */
  expectPrefix: string;
  /** Processes whose CPU time over the timed phase is reported (the server side). */
  pids: number[];
  lossTimeoutMs?: number;
}

export interface LoadResult {
  type: 'result';
  answered: number;
  seconds: number;
  qps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  lost: number;
  /** Answers that failed a check (rcode, no answer, wrong question or address). */
  bad: number;
  firstBad?: string;
  /** CPU used over the timed phase, in cores (1 = one core busy the whole time). */
  loadCpu: number;
  serverCpu: number[];
}

const ID_SPACE = 0x10000;

function nearest(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

async function run(req: LoadRequest): Promise<LoadResult> {
  const queries = req.names.map((name) => dnsPacket.encode({ type: 'query', id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }));
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  sock.connect(req.target.port, req.target.host);
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));

  const sentAt = new Float64Array(ID_SPACE);
  const nameOf = new Int32Array(ID_SPACE).fill(-1);
  const lossMs = req.lossTimeoutMs ?? 1_000;
  let nextId = 0;
  let nextName = 0;
  let outstanding = 0;
  let phase: 'warmup' | 'timed' | 'drain' = 'warmup';
  let answered = 0;
  let lost = 0;
  let bad = 0;
  let firstBad: string | undefined;
  let latencies = new Float64Array(1 << 20);
  let nLat = 0;

  const sendOne = (): void => {
    // Skip IDs still outstanding (only after 65,536 queries with one lost; cheap to check).
    let id = nextId;
    while (nameOf[id] !== -1) id = (id + 1) & 0xffff;
    nextId = (id + 1) & 0xffff;
    const i = nextName;
    nextName = (nextName + 1) % queries.length;
    // A copy per send: libuv may still hold a queued datagram's memory after send() returns.
    const q = Buffer.from(queries[i] as Buffer);
    q.writeUInt16BE(id, 0);
    nameOf[id] = i;
    sentAt[id] = performance.now();
    outstanding++;
    sock.send(q);
  };

  const noteBad = (why: string): void => {
    bad++;
    firstBad ??= why;
  };

  const check = (msg: Buffer, nameIndex: number, full: boolean): void => {
    const flags = msg.readUInt16BE(2);
    const rcode = flags & 0xf;
    const ancount = msg.readUInt16BE(6);
    if ((flags & 0x8000) === 0 || rcode !== 0 || ancount === 0) return noteBad(`rcode ${rcode}, ${ancount} answers for ${req.names[nameIndex] ?? '?'}`);
    // The question section must be the one we sent (same bytes after the header, up to case).
    const q = queries[nameIndex] as Buffer;
    if (msg.length < q.length || msg.compare(q, 12, q.length, 12, q.length) !== 0) {
      if (msg.subarray(12, q.length).toString('latin1').toLowerCase() !== q.subarray(12).toString('latin1').toLowerCase()) return noteBad('question mismatch');
    }
    if (!full) return;
    const a = dnsPacket.decode(msg).answers?.find((r) => r.type === 'A') as { data?: unknown } | undefined;
    const ip = typeof a?.data === 'string' ? a.data : '';
    if (!ip.startsWith(req.expectPrefix)) noteBad(`A ${ip || 'missing'} for ${req.names[nameIndex] ?? '?'}, expected ${req.expectPrefix}*`);
  };

  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));

  sock.on('message', (msg: Buffer) => {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const nameIndex = nameOf[id] ?? -1;
    if (nameIndex === -1) return; // late answer to a query already counted lost
    nameOf[id] = -1;
    outstanding--;
    if (phase === 'timed') {
      const ms = performance.now() - (sentAt[id] ?? 0);
      if (nLat === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[nLat++] = ms;
      answered++;
      check(msg, nameIndex, (answered & 63) === 1);
      if (req.maxAnswers !== undefined && answered >= req.maxAnswers) phase = 'drain';
    } else {
      check(msg, nameIndex, true);
    }
    if (phase !== 'drain') sendOne();
    else if (outstanding === 0) resolveDone();
  });

  // Lost datagrams: free their slot and send another, so the window stays full.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (let id = 0; id < ID_SPACE; id++) {
      if (nameOf[id] === -1 || now - (sentAt[id] ?? 0) < lossMs) continue;
      nameOf[id] = -1;
      outstanding--;
      if (phase === 'timed') lost++;
      if (phase !== 'drain') sendOne();
    }
    if (phase === 'drain' && outstanding === 0) resolveDone();
  }, Math.min(250, lossMs / 2));

  for (let i = 0; i < req.window; i++) sendOne();
  await new Promise((r) => setTimeout(r, req.warmupSeconds * 1000));
  // Bad answers during the warm-up count too (e.g. SERVFAIL while reachability is unknown).
  phase = 'timed';
  const cpu0 = process.cpuUsage();
  const server0 = req.pids.map(procCpuSeconds);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      phase = 'drain';
      resolve();
    }, req.seconds * 1000);
    if (req.maxAnswers !== undefined) {
      const poll = setInterval(() => {
        if (phase !== 'drain') return;
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      }, 5);
    }
  });
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverCpu = req.pids.map((pid, i) => (procCpuSeconds(pid) - (server0[i] ?? 0)) / elapsed);
  if (outstanding > 0) await done;
  clearInterval(sweep);
  sock.close();
  const sorted = latencies.subarray(0, nLat).sort();
  return {
    type: 'result',
    answered,
    seconds: elapsed,
    qps: answered / elapsed,
    p50Ms: nearest(sorted, 50),
    p90Ms: nearest(sorted, 90),
    p99Ms: nearest(sorted, 99),
    maxMs: nearest(sorted, 100),
    lost,
    bad,
    ...(firstBad ? { firstBad } : {}),
    loadCpu: (cpu.user + cpu.system) / 1e6 / elapsed,
    serverCpu,
  };
}

process.on('message', (m: LoadRequest | { type: 'exit' }) => {
  if (m.type === 'exit') process.exit(0);
  if (m.type === 'run') {
    run(m).then(
      (r) => process.send?.(r),
      (err: unknown) => process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
    );
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'load-ready' });
