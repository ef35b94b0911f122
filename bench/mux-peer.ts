// One end of a mux benchmark case, run as its own process (forked by mux.bench.ts through tsx).
// Role "serve" = receiver / broker side; role "drive" = sender / connector side, which does the
// timing and reports a Measurement over IPC. Neither end buffers without bound: senders wait for
// 'drain' (or yamux onDrain) whenever a write reports backpressure; receivers only count bytes.
import './polyfill.js';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Stream as LpStream } from '@libp2p/interface';
import {
  countReadable,
  payloadChunk,
  sendBytes,
  startTimer,
  tlsClientOptions,
  tlsServerOptions,
  u64,
  writableTarget,
  type ChunkTarget,
  type TlsMaterial,
} from './lib.js';
import {
  H2_CONNECTION_WINDOW,
  H2_STREAM_WINDOW,
  isToPeer,
  type DriveMsg,
  type FromPeer,
  type Measurement,
  type MuxCase,
  type ServeMsg,
  type Windows,
} from './mux-cases.js';
import type { YamuxMuxer, YamuxWindows } from './yamux-socket.js';

// libp2p is loaded only in processes that run a yamux case: importing its module graph measurably
// changes how fast a Node process receives plain TCP on this VM (raw TCP ~1.5 GB/s → ~0.35 GB/s
// with @libp2p/utils merely imported, see docs/bench-mux.md), which must not leak into other rows.
function loadYamux(): Promise<typeof import('./yamux-socket.js')> {
  return import('./yamux-socket.js');
}

const ONE = Buffer.from([0x2a]);
const CONNECT_HEADERS = { ':method': 'CONNECT', ':authority': 'app.internal.example:443' } as const;

function send(msg: FromPeer): void {
  process.send?.(msg);
}

function yamuxWindows(w: Windows): YamuxWindows {
  return w === 'tuned' ? { initialStreamWindowSize: H2_STREAM_WINDOW, maxStreamWindowSize: H2_CONNECTION_WINDOW } : {};
}

function h2Settings(w: Windows): http2.Settings {
  return w === 'tuned' ? { initialWindowSize: H2_STREAM_WINDOW } : {};
}

// =============================================================================================
// Receiver (server) side
// =============================================================================================

/**
 * Length-prefixed transfers on a raw socket: [u64 length][payload]; after the whole payload is
 * counted the receiver answers one byte, and the connection stays open for the next transfer.
 */
function serveRawTransfers(sock: Duplex): void {
  let header = Buffer.alloc(0);
  let remaining = -1;
  sock.on('data', (chunk: Buffer) => {
    let off = 0;
    while (off < chunk.length) {
      if (remaining < 0) {
        const need = 8 - header.length;
        header = Buffer.concat([header, chunk.subarray(off, off + need)]);
        off += Math.min(need, chunk.length - off);
        if (header.length === 8) {
          remaining = Number(header.readBigUInt64BE(0));
          header = Buffer.alloc(0);
        }
      } else {
        const take = Math.min(remaining, chunk.length - off);
        off += take;
        remaining -= take;
      }
      if (remaining === 0) {
        sock.write(ONE);
        remaining = -1;
      }
    }
  });
  sock.on('end', () => sock.end());
  sock.on('error', () => sock.destroy());
}

function serveYamuxStream(c: MuxCase, s: LpStream): void {
  if (c.kind === 'throughput') {
    let n = 0;
    s.addEventListener('message', (e) => {
      n += e.data.byteLength;
    });
    s.addEventListener('end', () => {
      s.send(u64(n));
      void s.close().catch(() => undefined);
    });
  } else {
    // Microtunnel open: the "target" answers one byte at once and half-closes.
    s.addEventListener('message', () => undefined);
    s.send(ONE);
    void s.close().catch(() => undefined);
  }
}

function serveH2Stream(c: MuxCase, stream: http2.ServerHttp2Stream): void {
  stream.on('error', () => undefined);
  stream.respond({ ':status': 200 });
  if (c.kind === 'throughput') {
    void countReadable(stream).then((n) => stream.end(u64(n)), () => stream.destroy());
  } else {
    stream.end(ONE);
    stream.resume();
  }
}

async function serve(msg: ServeMsg): Promise<number> {
  const { c, tls: m } = msg;
  let server: net.Server;
  switch (c.transport) {
    case 'tcp':
      server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
        sock.setNoDelay(true);
        if (c.kind === 'throughput') serveRawTransfers(sock);
        else {
          sock.on('error', () => undefined);
          sock.end(ONE);
          sock.resume();
        }
      });
      break;
    case 'tls':
      server = tls.createServer({ ...tlsServerOptions(m), allowHalfOpen: true });
      server.on('secureConnection', (sock: tls.TLSSocket) => {
        sock.setNoDelay(true);
        if (c.kind === 'throughput') serveRawTransfers(sock);
        else {
          sock.on('error', () => undefined);
          sock.end(ONE);
          sock.resume();
        }
      });
      break;
    case 'h2': {
      const h2 = http2.createSecureServer({
        ...tlsServerOptions(m),
        allowHTTP1: false,
        settings: h2Settings(c.windows),
      });
      h2.on('secureConnection', (sock: tls.TLSSocket) => sock.setNoDelay(true));
      h2.on('session', (session) => {
        session.on('error', () => undefined);
        if (c.windows === 'tuned') session.setLocalWindowSize(H2_CONNECTION_WINDOW);
      });
      h2.on('stream', (stream) => serveH2Stream(c, stream));
      server = h2;
      break;
    }
    case 'yamux': {
      const { createYamux } = await loadYamux();
      server = tls.createServer({ ...tlsServerOptions(m), allowHalfOpen: true });
      server.on('secureConnection', (sock: tls.TLSSocket) => {
        sock.setNoDelay(true);
        sock.on('error', () => undefined);
        const muxer = createYamux(sock, 'inbound', yamuxWindows(c.windows));
        muxer.addEventListener('stream', (e) => serveYamuxStream(c, e.detail));
      });
      break;
    }
  }
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

// =============================================================================================
// Sender (client) side
// =============================================================================================

function connectTcp(port: number): Promise<net.Socket> {
  const sock = net.connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true });
  return once(sock, 'connect').then(() => sock);
}

function connectTls(m: TlsMaterial, port: number, alpn?: string[]): Promise<tls.TLSSocket> {
  // tls.connect honours allowHalfOpen (passed to the TLSSocket) although @types/node omits it.
  const opts: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    ...tlsClientOptions(m, port),
    allowHalfOpen: true,
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  };
  const sock = tls.connect(opts);
  sock.setNoDelay(true);
  return once(sock, 'secureConnect').then(() => sock);
}

function firstData(r: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      r.off('error', onErr);
      resolve();
    };
    const onErr = (e: Error): void => {
      r.off('data', onData);
      reject(e);
    };
    r.once('data', onData);
    r.once('error', onErr);
  });
}

// ---- raw TCP / TLS ----------------------------------------------------------------------------

/** Resolves one waiter per acknowledgement byte read from the socket. */
class AckQueue {
  private readonly waiters: Array<() => void> = [];
  constructor(sock: Duplex) {
    sock.on('data', (b: Buffer) => {
      for (let i = 0; i < b.length; i++) this.waiters.shift()?.();
    });
  }
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

async function rawTransfer(sock: Duplex, acks: AckQueue, bytes: number, chunk: Buffer): Promise<number> {
  const acked = acks.next();
  const t = startTimer();
  sock.write(u64(bytes));
  await sendBytes(writableTarget(sock), bytes, chunk);
  await acked;
  return Number(t.ns());
}

// ---- HTTP/2 -----------------------------------------------------------------------------------

async function connectH2(m: TlsMaterial, port: number, windows: Windows): Promise<http2.ClientHttp2Session> {
  const sock = await connectTls(m, port, ['h2']);
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    createConnection: () => sock,
    settings: h2Settings(windows),
  });
  session.on('error', () => undefined);
  await once(session, 'connect');
  if (windows === 'tuned') session.setLocalWindowSize(H2_CONNECTION_WINDOW);
  return session;
}

async function h2Upload(session: http2.ClientHttp2Session, bytes: number, chunk: Buffer): Promise<void> {
  const req = session.request(CONNECT_HEADERS, { endStream: false });
  await once(req, 'response');
  const reply: Buffer[] = [];
  req.on('data', (b: Buffer) => reply.push(b));
  const ended = once(req, 'end');
  await sendBytes(writableTarget(req), bytes, chunk);
  req.end();
  await ended;
  const got = Buffer.concat(reply);
  if (got.length !== 8 || Number(got.readBigUInt64BE(0)) !== bytes) throw new Error(`h2 receiver counted ${got.toString('hex')}, sent ${bytes}`);
}

async function h2Open(session: http2.ClientHttp2Session): Promise<number> {
  const t = startTimer();
  const req = session.request(CONNECT_HEADERS, { endStream: false });
  const closed = once(req, 'close');
  await firstData(req);
  const ms = t.ms();
  req.resume();
  req.end();
  await closed;
  return ms;
}

// ---- yamux ------------------------------------------------------------------------------------

function yamuxTarget(s: LpStream): ChunkTarget {
  return { write: (c) => s.send(c), drain: () => s.onDrain() };
}

/** Collects everything the far side sends until it half-closes. */
function yamuxReply(s: LpStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    s.addEventListener('message', (e) => {
      parts.push(e.data.subarray());
    });
    s.addEventListener('end', () => resolve(Buffer.concat(parts)));
    s.addEventListener('close', (e) => {
      if (e.error) reject(e.error);
      else resolve(Buffer.concat(parts));
    });
  });
}

async function yamuxUpload(muxer: YamuxMuxer, bytes: number, chunk: Buffer): Promise<void> {
  const s = await muxer.createStream();
  const reply = yamuxReply(s);
  await sendBytes(yamuxTarget(s), bytes, chunk);
  await s.close();
  const got = await reply;
  if (got.length !== 8 || Number(got.readBigUInt64BE(0)) !== bytes) throw new Error(`yamux receiver counted ${got.toString('hex')}, sent ${bytes}`);
}

async function yamuxOpen(muxer: YamuxMuxer): Promise<number> {
  const t = startTimer();
  const s = await muxer.createStream();
  const closed = new Promise<void>((resolve) => s.addEventListener('close', () => resolve(), { once: true }));
  await new Promise<void>((resolve, reject) => {
    s.addEventListener('message', () => resolve(), { once: true });
    s.addEventListener('close', (e) => reject(e.error ?? new Error('yamux stream closed before first byte')), { once: true });
  });
  const ms = t.ms();
  await s.close();
  if (s.status !== 'closed') await closed;
  return ms;
}

async function connectYamux(m: TlsMaterial, port: number, windows: Windows): Promise<YamuxMuxer> {
  const { createYamux } = await loadYamux();
  const sock = await connectTls(m, port);
  sock.on('error', () => undefined);
  return createYamux(sock, 'outbound', yamuxWindows(windows));
}

// ---- per-connection opens (baselines for setup/rate) -----------------------------------------

async function connectionOpen(c: MuxCase, m: TlsMaterial, port: number): Promise<number> {
  const t = startTimer();
  const sock = c.transport === 'tcp' ? await connectTcp(port) : await connectTls(m, port);
  const closed = once(sock, 'close');
  await firstData(sock);
  const ms = t.ms();
  sock.resume();
  sock.end();
  await closed;
  return ms;
}

// ---- drivers ----------------------------------------------------------------------------------

function split(bytes: number, parts: number, unit: number): number[] {
  const units = Math.floor(bytes / unit);
  const out: number[] = [];
  for (let i = 0; i < parts; i++) out.push((Math.floor(units / parts) + (i < units % parts ? 1 : 0)) * unit);
  out[0] = (out[0] ?? 0) + (bytes - units * unit);
  return out;
}

async function drive(msg: DriveMsg): Promise<Measurement> {
  const { c, tls: m, port } = msg;
  const chunk = payloadChunk(msg.writeSize);

  if (c.kind === 'throughput') {
    let transfer: (bytes: number) => Promise<number>;
    let teardown: () => void;
    if (c.transport === 'tcp' || c.transport === 'tls') {
      const sock = c.transport === 'tcp' ? await connectTcp(port) : await connectTls(m, port);
      const acks = new AckQueue(sock);
      transfer = (bytes) => rawTransfer(sock, acks, bytes, chunk);
      teardown = () => sock.end();
    } else if (c.transport === 'h2') {
      const session = await connectH2(m, port, c.windows);
      transfer = async (bytes) => {
        const t = startTimer();
        await Promise.all(split(bytes, c.streams, msg.writeSize).map((n) => h2Upload(session, n, chunk)));
        return Number(t.ns());
      };
      teardown = () => session.close();
    } else {
      const muxer = await connectYamux(m, port, c.windows);
      transfer = async (bytes) => {
        const t = startTimer();
        await Promise.all(split(bytes, c.streams, msg.writeSize).map((n) => yamuxUpload(muxer, n, chunk)));
        return Number(t.ns());
      };
      teardown = () => void muxer.close().catch(() => undefined);
    }
    // Untimed warm-up on the same connection: V8 tiering, heap sizing, TCP buffers and flow
    // control windows take a few hundred MiB to settle (first 256 MiB run at ~half speed).
    const warm = startTimer();
    do {
      const n = Math.min(msg.bytes, 64 << 20);
      const ns = await transfer(n);
      if (process.env.ZCC_BENCH_DEBUG) process.stderr.write(`    warm-up ${c.name}: ${(n / 1048576 / (ns / 1e9)).toFixed(0)} MiB/s\n`);
    } while (warm.ms() < msg.warmupMs);
    const ns = await transfer(msg.bytes);
    teardown();
    return { kind: 'throughput', bytes: msg.bytes, ns };
  }

  let openOnce: () => Promise<number>;
  let teardown: () => void = () => undefined;
  if (c.transport === 'h2') {
    const session = await connectH2(m, port, c.windows);
    openOnce = () => h2Open(session);
    teardown = () => session.close();
  } else if (c.transport === 'yamux') {
    const muxer = await connectYamux(m, port, c.windows);
    openOnce = () => yamuxOpen(muxer);
    teardown = () => void muxer.close().catch(() => undefined);
  } else {
    openOnce = () => connectionOpen(c, m, port);
  }

  if (c.kind === 'setup') {
    for (let i = 0; i < c.warmupOpens; i++) await openOnce();
    const samplesMs: number[] = [];
    for (let i = 0; i < c.opens; i++) samplesMs.push(await openOnce());
    teardown();
    return { kind: 'setup', samplesMs };
  }

  const runFor = async (ms: number): Promise<{ completed: number; ns: number }> => {
    const t = startTimer();
    let completed = 0;
    const worker = async (): Promise<void> => {
      while (t.ms() < ms) {
        await openOnce();
        completed++;
      }
    };
    await Promise.all(Array.from({ length: c.concurrency }, worker));
    return { completed, ns: Number(t.ns()) };
  };
  await runFor(c.warmupMs);
  const r = await runFor(c.durationMs);
  teardown();
  return { kind: 'rate', ...r };
}

// =============================================================================================

process.on('message', (raw: unknown) => {
  if (!isToPeer(raw)) return;
  if (raw.type === 'exit') process.exit(0);
  const work: Promise<FromPeer> =
    raw.type === 'serve'
      ? serve(raw).then((port) => ({ type: 'listening', port }))
      : drive(raw).then((m) => ({ type: 'result', m }));
  work.then(send, (err: unknown) => {
    send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  });
});
process.on('disconnect', () => process.exit(0));
