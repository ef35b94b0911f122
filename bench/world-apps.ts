// The application servers behind the connector in the `path` and `dns` benchmarks, in a process
// of their own (forked by bench/world.ts). On ephemeral loopback ports: the benchmark runs on a
// shared machine, outside any namespace, so fixed ports could clash.
//
//   bulk  TCP: the client sends 8 bytes (u64 BE) N; the server sends N bytes, then FIN. The
//         bytes are one random 64 KiB chunk repeated, the same for every transfer of this
//         process, so two transfers of the same N (path and direct) must have the same SHA-256.
//   http  HTTP/1.1: every request gets a 13-byte "hello, bench\n" (the time-to-first-byte app).
//   idle  TCP echo that otherwise says nothing: holds the 10,000 idle connections and counts
//         them; echoing lets the benchmark prove a sample of them still carries bytes.
//
// Its own process because the file descriptors must fit the hard RLIMIT_NOFILE of one process
// (20,000 here, not raisable without CAP_SYS_RESOURCE): connector legs and accepted app sockets
// together would be 20,000 for 10,000 connections.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

export interface AppsReady {
  type: 'apps';
  pid: number;
  ports: { bulk: number; http: number; idle: number };
}

export interface AppsCounts {
  type: 'counts';
  /** Idle-app connections open now. */
  idleOpen: number;
  /** Idle-app connections accepted since start. */
  idleAccepted: number;
}

const chunk = randomBytes(64 << 10);
const sockets = new Set<net.Socket>();
const track = (s: net.Socket): void => {
  sockets.add(s);
  s.on('error', () => undefined);
  s.once('close', () => sockets.delete(s));
};

const bulk = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  track(s);
  let head = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    head = Buffer.concat([head, d]);
    if (head.length < 8) return;
    s.off('data', onData);
    s.resume();
    let left = Number(head.readBigUInt64BE(0));
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  };
  s.on('data', onData);
});

const body = Buffer.from('hello, bench\n');
const web = http.createServer({ keepAliveTimeout: 5_000 }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
web.on('connection', track);

let idleOpen = 0;
let idleAccepted = 0;
const idle = net.createServer({ allowHalfOpen: true }, (s) => {
  idleOpen++;
  idleAccepted++;
  s.on('error', () => undefined);
  s.once('close', () => idleOpen--);
  s.pipe(s);
});

const listen = (s: net.Server): Promise<number> =>
  new Promise((resolve, reject) => {
    s.once('error', reject);
    // A deep backlog: the idle benchmark opens hundreds of connections at once.
    s.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve((s.address() as net.AddressInfo).port));
  });

const ready: AppsReady = { type: 'apps', pid: process.pid, ports: { bulk: await listen(bulk), http: await listen(web), idle: await listen(idle) } };
process.send?.(ready);
process.on('message', (m: { type: string }) => {
  if (m.type === 'counts') process.send?.({ type: 'counts', idleOpen, idleAccepted } satisfies AppsCounts);
  if (m.type === 'exit') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
// Never outlive the benchmark, even when it was killed.
process.on('disconnect', () => process.exit(0));
