import { createHash, randomFillSync } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  port: number;
  close(): Promise<void>;
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function closer(server: net.Server, sockets: Set<net.Socket>): () => Promise<void> {
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return () => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(() => r()));
  };
}

/** TCP echo with half-close: the reply ends only after the client's FIN. */
export async function echoServer(): Promise<TestServer> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const close = closer(server, new Set());
  return { port: await listen(server), close };
}

/**
 * Streams random bytes to every connection, respecting backpressure, and records how many
 * bytes each connection accepted so tests can see a stalled path stop taking data.
 */
export async function sourceServer(): Promise<TestServer & { written: number[]; sockets: net.Socket[] }> {
  const written: number[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer({ noDelay: true }, (s) => {
    const i = written.push(0) - 1;
    sockets.push(s);
    s.on('error', () => undefined);
    const chunk = randomFillSync(Buffer.alloc(64 << 10));
    const pump = (): void => {
      while (!s.destroyed) {
        written[i]! += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  const close = closer(server, new Set());
  return { port: await listen(server), close, written, sockets };
}

/** HTTP server: GET /bytes/N streams N random bytes and remembers their SHA-256 by request id. */
export async function bulkHttpServer(): Promise<TestServer & { hashes: Map<string, string> }> {
  const hashes = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const m = /^\/bytes\/(\d+)\?id=(\w+)$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    let left = Number(m[1]);
    const hash = createHash('sha256');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
    const chunk = Buffer.alloc(256 << 10);
    const pump = (): void => {
      while (left > 0) {
        const piece = randomFillSync(chunk).subarray(0, Math.min(left, chunk.length));
        left -= piece.length;
        hash.update(piece);
        if (!res.write(Buffer.from(piece))) {
          res.once('drain', pump);
          return;
        }
      }
      hashes.set(m[2]!, hash.digest('hex'));
      res.end();
    };
    pump();
  });
  const close = closer(server, new Set());
  return { port: await listen(server), close, hashes };
}

/** Accepts connections and never reads from them: a stalled application server. */
export async function sinkServer(): Promise<TestServer> {
  const server = net.createServer({ noDelay: true }, (s) => {
    s.on('error', () => undefined);
    s.pause();
  });
  const close = closer(server, new Set());
  return { port: await listen(server), close };
}
