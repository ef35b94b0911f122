// Network namespaces for the kernel-intercept tests: each test file gets its own (zcc-t-<random>),
// so rules, routes and fixed ports never meet the host's or another test's.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FixtureArgs, FixtureRequest } from '../fixtures/kernel-agent.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command; resolves with its exit code (never rejects on a non-zero exit). */
export function exec(file: string, args: readonly string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: opts.timeoutMs ?? 20_000, maxBuffer: 64 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString(), ms: performance.now() - started });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Why these tests cannot run here, or undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces and nftables need CAP_NET_ADMIN)';
  for (const [tool, args] of [['ip', ['netns', 'list']], ['nft', ['--version']], ['curl', ['--version']], ['nc', ['-h']], ['dig', ['-v']]] as const) {
    const r = await exec(tool, args);
    // `nc -h` exits 1 after printing its usage; only a missing binary (ENOENT) disqualifies it.
    if (r.code === -1 || (r.code !== 0 && tool !== 'nc')) return `${tool} is not usable: ${r.stderr.trim() || `exit ${r.code}`}`;
  }
  return undefined;
}

export class Netns {
  private constructor(readonly name: string) {}

  static async create(): Promise<Netns> {
    const name = `zcc-t-${randomBytes(4).toString('hex')}`;
    const add = await exec('ip', ['netns', 'add', name]);
    if (add.code !== 0) throw new Error(`ip netns add ${name}: ${add.stderr}`);
    const ns = new Netns(name);
    await ns.must('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  run(file: string, args: readonly string[], opts?: { input?: string | Buffer; timeoutMs?: number }): Promise<ExecResult> {
    return exec('ip', ['netns', 'exec', this.name, file, ...args], opts);
  }

  async must(file: string, args: readonly string[]): Promise<string> {
    const r = await this.run(file, args);
    if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} in ${this.name}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** Our nft table, or undefined when it does not exist. */
  async zccTable(): Promise<string | undefined> {
    const r = await this.run('nft', ['list', 'table', 'inet', 'zcc']);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** Our routes (proto 122) in the local table. */
  async zccRoutes(): Promise<string> {
    return (await this.must('ip', ['route', 'show', 'table', 'local', 'proto', '122'])).trim();
  }

  /**
   * Gives the namespace its own /etc/resolv.conf: `ip netns exec` bind-mounts
   * /etc/netns/NAME/resolv.conf over it for every command run here. Returns that file's path;
   * destroy() removes it.
   */
  async ownResolvConf(content: string): Promise<string> {
    const dir = join('/etc/netns', this.name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'resolv.conf'), content);
    return join(dir, 'resolv.conf');
  }

  async destroy(): Promise<void> {
    await exec('ip', ['netns', 'del', this.name]);
    await rm(join('/etc/netns', this.name), { recursive: true, force: true });
  }
}

type FixtureMessage = { type: string; [k: string]: unknown };

const FIXTURE = fileURLToPath(new URL('../fixtures/kernel-agent.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** The agent side (fixtures/kernel-agent.ts) running inside a namespace, driven over IPC. */
export class AgentFixture {
  readonly messages: FixtureMessage[] = [];
  stderr = '';
  private waiters: Array<() => void> = [];

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: FixtureMessage) => {
      this.messages.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.once('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /**
   * `entry`: the fixture as one bundled file run on plain Node (the benchmark: compiled code, as
   * installed), instead of kernel-agent.ts through tsx; `cloudEntry` likewise for its cloud;
   * `nodeArgs` and `env` for the agent's process (and what it starts).
   */
  static async start(
    ns: Netns,
    args: FixtureArgs,
    bundled?: { entry: string; cloudEntry: string; nodeArgs?: readonly string[]; env?: Readonly<Record<string, string>> },
  ): Promise<{ fixture: AgentFixture; ready: FixtureMessage }> {
    // Bundled (the benchmark): ZCC_BENCH_AGENT_NODE_ARGS adds node flags, e.g. "--cpu-prof".
    const benchArgs = (process.env.ZCC_BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const node = bundled ? [process.execPath, ...(bundled.nodeArgs ?? []), ...benchArgs, bundled.entry] : [process.execPath, '--import', 'tsx', FIXTURE];
    const child = spawn('ip', ['netns', 'exec', ns.name, ...node, JSON.stringify(args)], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, ZCC_TEST_LOG_LEVEL: process.env.ZCC_TEST_LOG_LEVEL ?? 'info', ...(bundled ? { ...bundled.env, ZCC_FIXTURE_CLOUD_ENTRY: bundled.cloudEntry } : {}) },
    });
    const fixture = new AgentFixture(child);
    const ready = await fixture.next((m) => m.type === 'ready' || m.type === 'error', 60_000);
    if (ready.type === 'error') throw new Error(`agent fixture failed: ${String(ready.message)}\n${fixture.stderr}`);
    return { fixture, ready };
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The next message (after `from`) accepted by `pred`; rejects on exit or deadline. */
  async next(pred: (m: FixtureMessage) => boolean, timeoutMs = 15_000, from = 0): Promise<FixtureMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.messages.slice(from).find(pred);
      if (hit) return hit;
      if (this.exited) throw new Error(`agent fixture exited (${this.child.exitCode ?? this.child.signalCode}) \n${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`agent fixture: no matching message within ${timeoutMs} ms\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async request(req: FixtureRequest, answer: string): Promise<FixtureMessage> {
    const from = this.messages.length;
    this.child.send(req);
    return this.next((m) => m.type === answer, 15_000, from);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await gone;
  }

  /** Clean stop: the fixture stops the intercept, then exits. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'stop' });
    await gone;
  }
}
