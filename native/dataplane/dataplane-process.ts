import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * The package root: the nearest directory holding the C source, up from the entry script (the
 * CLI, a test runner or a benchmark bundle all live inside the package) or else the working
 * directory. Not import.meta: this module is also bundled as CommonJS (the agent executable).
 */
function packageRoot(): string {
  for (const start of [process.argv[1] ? realpathSync(process.argv[1]) : '', process.cwd()].filter(Boolean)) {
    for (let dir = dirname(start); ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'native', 'dataplane', 'dataplane.c'))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error('native/dataplane/dataplane.c not found above the entry script or the working directory');
}

/**
 * The native data plane's binary, compiled from dataplane.c when missing or older than the
 * source. Needs a C compiler and the OpenSSL and nghttp2 headers (Debian: gcc, libssl-dev,
 * libnghttp2-dev); the error says which step failed.
 */
export function dataplaneBinary(): string {
  const root = packageRoot();
  const source = join(root, 'native', 'dataplane', 'dataplane.c');
  const binary = join(root, 'native', 'build', 'zcc-dataplane');
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  const tmp = `${binary}.${process.pid}`;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', tmp, source, '-lssl', '-lcrypto', '-lnghttp2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('mv', ['-f', tmp, binary]);
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(0, 3).join(' | ');
    throw new Error(`cannot build the native data plane (cc, libssl-dev and libnghttp2-dev are needed): ${stderr || (err as Error).message}`);
  }
  return binary;
}

export interface DataplaneTunnel {
  /** The edge's IPv4 address and port. */
  host: string;
  port: number;
  serverName: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  /** The control frame(s) sent first on the control stream: the encoded hello. */
  hello: Buffer;
}

export interface DataplaneRange {
  from: number;
  to: number;
}

export type DataplaneStats = Record<'accepted' | 'refused' | 'established' | 'failed' | 'active', number>;

interface Events {
  up: [id: number];
  down: [id: number, reason: string];
  control: [id: number, bytes: Buffer];
  error: [message: string];
  exit: [code: number | null];
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/**
 * The zcc-dataplane process (dataplane.c): owns the intercept listener and one Z-Tunnel per
 * tenant, splices intercepted TCP connections to microtunnels. This class speaks its line
 * protocol: commands on its stdin, events on its stdout.
 */
export class DataplaneProcess extends EventEmitter<Events> {
  private pendingStats: Array<(s: DataplaneStats) => void> = [];
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    super();
  }

  /** Starts the process with its listener on 127.0.0.1:`port` (0: any); resolves once it listens. */
  static start(opts: { port?: number; connectMs: number; halfClosedIdleMs: number; binary?: string }): Promise<DataplaneProcess> {
    const binary = opts.binary ?? dataplaneBinary();
    const child = spawn(binary, [String(opts.port ?? 0), String(opts.connectMs), String(opts.halfClosedIdleMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
    return new Promise((resolve, reject) => {
      let plane: DataplaneProcess | null = null;
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      child.once('error', (err) => reject(new Error(`cannot start ${binary}: ${err.message}`)));
      child.once('exit', (code) => {
        if (!plane) reject(new Error(`${binary} exited with ${code} before listening`));
        else {
          plane.exited = true;
          plane.emit('exit', code);
        }
      });
      lines.on('line', (line) => {
        const [event, a, b] = splitEvent(line);
        if (event === 'listening' && !plane) {
          plane = new DataplaneProcess(child, Number(a));
          resolve(plane);
        } else if (!plane) {
          reject(new Error(`${binary}: ${line}`));
        } else plane.onEvent(event, a, b, line);
      });
    });
  }

  get running(): boolean {
    return !this.exited;
  }

  tunnel(id: number, t: DataplaneTunnel): void {
    this.command(`tunnel ${id} ${t.host} ${t.port} ${t.serverName} ${b64(t.caPem)} ${b64(t.certPem)} ${b64(t.keyPem)} ${b64(t.hello)}`);
  }

  send(id: number, bytes: Buffer): void {
    this.command(`send ${id} ${b64(bytes)}`);
  }

  close(id: number): void {
    this.command(`close ${id}`);
  }

  route(ip: string, id: number, host: string, ranges: readonly DataplaneRange[]): void {
    const list = ranges.length ? ranges.map((r) => `${r.from}-${r.to}`).join(',') : '-';
    this.command(`route ${ip} ${id} ${host} ${list}`);
  }

  unroute(ip: string): void {
    this.command(`unroute ${ip}`);
  }

  stats(): Promise<DataplaneStats> {
    return new Promise((resolve) => {
      this.pendingStats.push(resolve);
      this.command('stats');
    });
  }

  /** Ends the process; the kernel resets the connections it held. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.once('exit', () => resolve()));
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2_000);
    await gone;
    clearTimeout(timer);
  }

  private command(line: string): void {
    if (this.exited) return;
    this.child.stdin?.write(`${line}\n`);
  }

  private onEvent(event: string, a: string, b: string, line: string): void {
    if (event === 'up') this.emit('up', Number(a));
    else if (event === 'down') this.emit('down', Number(a), b);
    else if (event === 'control') this.emit('control', Number(a), Buffer.from(b, 'base64'));
    else if (event === 'stats') {
      const stats = Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)])) as DataplaneStats;
      this.pendingStats.shift()?.(stats);
    } else this.emit('error', line);
  }
}

/** "down 3 TLS handshake failed: ..." → ['down', '3', 'TLS handshake failed: ...']. */
function splitEvent(line: string): [string, string, string] {
  const first = line.indexOf(' ');
  if (first < 0) return [line, '', ''];
  const second = line.indexOf(' ', first + 1);
  if (second < 0) return [line.slice(0, first), line.slice(first + 1), ''];
  return [line.slice(0, first), line.slice(first + 1, second), line.slice(second + 1)];
}
