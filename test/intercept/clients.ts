import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

/** Buffers a socket's input so tests can await exact byte counts. */
export class Reader {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private waiters: (() => void)[] = [];
  error: Error | undefined;

  constructor(sock: net.Socket, head?: Buffer) {
    if (head && head.length > 0) this.push(head);
    const wake = (): void => this.waiters.splice(0).forEach((w) => w());
    sock.on('data', (c: Buffer) => {
      this.push(c);
      wake();
    });
    sock.on('end', () => {
      this.ended = true;
      wake();
    });
    sock.on('error', (err) => {
      this.error = err;
      wake();
    });
  }

  async read(n: number, timeoutMs = 5_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.length < n) {
      if (this.error) throw this.error;
      if (this.ended) throw new Error(`EOF after ${this.length} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out reading ${n} bytes (have ${this.length})`);
      await this.wake(left);
    }
    return this.take(n);
  }

  private push(c: Buffer): void {
    this.chunks.push(c);
    this.length += c.length;
  }

  private take(n: number): Buffer {
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.length = all.length - n;
    return all.subarray(0, n);
  }

  private wake(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Resolves once the peer's FIN arrived; rejects with the socket error (e.g. ECONNRESET). */
  async end(timeoutMs = 5_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (this.error) throw this.error;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for FIN');
      await this.wake(left);
    }
    return this.take(this.length);
  }
}

export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

export function socksGreeting(): Buffer {
  return Buffer.from([5, 1, 0]);
}

export function socksRequest(host: string, port: number): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  if (net.isIPv4(host)) return Buffer.concat([Buffer.from([5, 1, 0, 1, ...host.split('.').map(Number)]), p]);
  const name = Buffer.from(host, 'latin1');
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, p]);
}

/** Opens a tunnel through the SOCKS5 proxy; returns the socket and its reader after success. */
export async function viaSocks(proxyPort: number, host: string, port: number): Promise<{ sock: net.Socket; reader: Reader; code: number }> {
  const sock = await connect(proxyPort);
  const reader = new Reader(sock);
  sock.write(socksGreeting());
  const method = await reader.read(2);
  if (method[1] !== 0) throw new Error(`method refused: ${method.toString('hex')}`);
  sock.write(socksRequest(host, port));
  const reply = await reader.read(10);
  return { sock, reader, code: reply[1] ?? -1 };
}

/** Opens a tunnel through the CONNECT proxy with Node's own HTTP client. */
export function viaHttpConnect(
  proxyPort: number,
  host: string,
  port: number,
): Promise<{ sock: net.Socket; reader: Reader; code: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    // Node's HTTP client sockets are not half-open by default; a tunnel client needs that.
    const createConnection = (): net.Socket => net.connect({ host: '127.0.0.1', port: proxyPort, allowHalfOpen: true, noDelay: true });
    const req = http.request({ method: 'CONNECT', path: `${host}:${port}`, createConnection });
    req.once('connect', (res, sock: net.Socket, head: Buffer) => {
      sock.setNoDelay(true);
      const reader = new Reader(sock, head);
      resolve({ sock, reader, code: res.statusCode ?? -1, headers: res.headers });
    });
    req.once('error', reject);
    req.end();
  });
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real curl binary with proxy environment variables removed. */
export function curl(args: string[]): Promise<CurlResult> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/_proxy$/i.test(k)) delete env[k];
  return new Promise((resolve) => {
    execFile('curl', ['-q', '-sS', '--max-time', '10', ...args], { env }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
