import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, statSync } from 'node:fs';
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
      if (existsSync(join(dir, 'native', 'dataplane', 'dataplane.h'))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error('native/dataplane/dataplane.h not found above the entry script or the working directory');
}

/** The native data plane's executable's name. */
export const DATAPLANE_BINARY = 'zcc-dataplane';

/**
 * The native data plane's binary, compiled from native/dataplane/*.c when missing or older than
 * a source. Needs a C compiler and the OpenSSL and nghttp2 headers (Debian: gcc, libssl-dev,
 * libnghttp2-dev); the error says which step failed.
 */
export function dataplaneBinary(): string {
  // A packaged agent ships it next to its executable (scripts/build-agent-sea.ts).
  const shipped = join(dirname(process.execPath), DATAPLANE_BINARY);
  if (existsSync(shipped)) return shipped;
  const root = packageRoot();
  const dir = join(root, 'native', 'dataplane');
  const files = readdirSync(dir).filter((f) => f.endsWith('.c') || f.endsWith('.h'));
  const sources = files.filter((f) => f.endsWith('.c')).map((f) => join(dir, f));
  const newest = Math.max(...files.map((f) => statSync(join(dir, f)).mtimeMs));
  const binary = join(root, 'native', 'build', DATAPLANE_BINARY);
  if (existsSync(binary) && statSync(binary).mtimeMs >= newest) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  const tmp = `${binary}.${process.pid}`;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', tmp, ...sources, '-lssl', '-lcrypto', '-lnghttp2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    // Whole or not at all, for a process starting it meanwhile (another test file, a second agent).
    renameSync(tmp, binary);
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(0, 3).join(' | ');
    throw new Error(`cannot build the native data plane (cc, libssl-dev and libnghttp2-dev are needed): ${stderr || (err as Error).message}`);
  }
  return binary;
}

/** Who carries the data: `node` this process, `native` the zcc-dataplane process, `auto` native when it can be built or found. */
export type DataPlaneChoice = 'auto' | 'node' | 'native';

/**
 * Resolves `auto`: native when the binary is there or builds, else Node, with `onFallback` told
 * why (a machine without cc or the headers still serves, only slower). An explicit `native`
 * that cannot be built throws.
 */
export function chooseDataPlane(choice: DataPlaneChoice, onFallback: (why: string) => void): 'node' | 'native' {
  if (choice === 'node') return 'node';
  try {
    const binary = dataplaneBinary();
    // It must also run here: a shipped binary whose shared libraries (libssl, libnghttp2) are missing would not.
    const r = spawnSync(binary, ['check'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`${binary} cannot run here: ${(r.stderr || r.stdout || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]}`);
    return 'native';
  } catch (err) {
    if (choice === 'native') throw err;
    onFallback((err as Error).message);
    return 'node';
  }
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
  hello?: Buffer;
}

export interface DataplaneRange {
  from: number;
  to: number;
}

export type DataplaneStats = Record<'accepted' | 'refused' | 'established' | 'failed' | 'active' | 'conns' | 'bytesUp' | 'bytesDown', number>;

interface Events {
  up: [id: number];
  /** Agent: a connection to this synthetic IP was accepted (at most every 10 s per IP). */
  use: [ip: string];
  /** Connector: an open waits for where host:port is; answer with target() or unresolved(). */
  resolve: [host: string, port: number];
  down: [id: number, reason: string];
  control: [id: number, bytes: Buffer];
  error: [message: string];
  exit: [code: number | null];
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/**
 * The zcc-dataplane process (native/dataplane, main.c has its line protocol). In the agent role
 * it owns the intercept listener and one Z-Tunnel per tenant and splices intercepted TCP
 * connections to microtunnels; in the connector role it owns the connector's Z-Tunnel and dials
 * the apps the edge opens microtunnels to. This class speaks its line protocol: commands on its
 * stdin, events on its stdout.
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

  /** The agent's role, its listener on 127.0.0.1:`port` (0: any); resolves once it listens. */
  static start(opts: { port?: number; connectMs: number; halfClosedIdleMs: number; openIdleMs: number; binary?: string }): Promise<DataplaneProcess> {
    return DataplaneProcess.spawn(opts.binary, ['agent', String(opts.port ?? 0), String(opts.connectMs), String(opts.halfClosedIdleMs), String(opts.openIdleMs)], 'listening');
  }

  /** The connector's role; resolves once it is ready for its tunnel. */
  static startConnector(opts: { connectMs: number; binary?: string }): Promise<DataplaneProcess> {
    return DataplaneProcess.spawn(opts.binary, ['connector', String(opts.connectMs)], 'ready');
  }

  private static spawn(path: string | undefined, args: string[], readyEvent: string): Promise<DataplaneProcess> {
    const binary = path ?? dataplaneBinary();
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    return new Promise((resolve, reject) => {
      let plane: DataplaneProcess | null = null;
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      child.once('error', (err) => reject(new Error(`cannot start ${binary}: ${err.message}`)));
      child.once('exit', (code) => {
        if (!plane) reject(new Error(`${binary} exited with ${code} before it was ready`));
        else {
          plane.exited = true;
          plane.emit('exit', code);
        }
      });
      lines.on('line', (line) => {
        const [event, a, b] = splitEvent(line);
        if (event === readyEvent && !plane) {
          plane = new DataplaneProcess(child, Number(a));
          resolve(plane);
        } else if (!plane) {
          reject(new Error(`${binary}: ${line}`));
        } else plane.onEvent(event, a, b, line);
      });
    });
  }

  /** Dials a Z-Tunnel; `hello` goes first on its control stream (none: the caller sends its own). */
  tunnel(id: number, t: DataplaneTunnel): void {
    const hello = t.hello ? b64(t.hello) : '-';
    this.command(`tunnel ${id} ${t.host} ${t.port} ${t.serverName} ${b64(t.caPem)} ${b64(t.certPem)} ${b64(t.keyPem)} ${hello}`);
  }

  send(id: number, bytes: Buffer): void {
    this.command(`send ${id} ${b64(bytes)}`);
  }

  close(id: number): void {
    this.command(`close ${id}`);
  }

  /** Agent: the edge of tunnel `id` resets microtunnels at our request (its hello announced `reset-request`). */
  peerResets(id: number): void {
    this.command(`peer-resets ${id}`);
  }

  route(ip: string, id: number, host: string, ranges: readonly DataplaneRange[]): void {
    const list = ranges.length ? ranges.map((r) => `${r.from}-${r.to}`).join(',') : '-';
    this.command(`route ${ip} ${id} ${host} ${list}`);
  }

  unroute(ip: string): void {
    this.command(`unroute ${ip}`);
  }

  /** Connector: `host:port` is at `ip:targetPort` for `ttlMs` (0: for good). */
  target(host: string, port: number, ip: string, targetPort: number, ttlMs: number): void {
    this.command(`target ${host} ${port} ${ip} ${targetPort} ${Math.max(0, Math.round(ttlMs))}`);
  }

  /** Connector: `host:port` does not resolve; the opens waiting on it are refused. */
  unresolved(host: string, port: number, why: string): void {
    this.command(`unresolved ${host} ${port} ${why.replace(/[\r\n]/g, ' ')}`);
  }

  /** Connector: the edge asked for the reset of microtunnel `tag` with `code`. */
  reset(id: number, tag: number, code: number): void {
    this.command(`reset ${id} ${tag} ${code}`);
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
    else if (event === 'resolve') this.emit('resolve', a, Number(b));
    else if (event === 'use') this.emit('use', a);
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
