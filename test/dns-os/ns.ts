import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { waitUntil } from '../helpers/log-capture.js';

/**
 * Namespaces for the OS-level DNS tests. Nothing here can reach the machine's own
 * /etc/resolv.conf: every process that reads or writes it runs in a private mount namespace
 * where /etc is an overlay whose upper layer is a temporary directory (so writes, renames and
 * symlinks behave as on a real /etc, and land in the temp dir), inside a network namespace of
 * its own (so the agent can have port 53, and dnsmasq upstreams live on 10.53.0.x).
 */

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixture-agent.ts', import.meta.url));
const TOOLS = ['ip', 'unshare', 'nsenter', 'mount', 'dnsmasq', 'dig', 'getent'];

/** Why the namespace tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network and mount namespaces)';
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${t}`]).status !== 0);
  if (missing.length) return `missing ${missing.join(', ')} (apt-get install -y iproute2 util-linux dnsmasq-base dnsutils)`;
  const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'd=$(mktemp -d) && mkdir $d/u $d/w && mount -t overlay overlay -o lowerdir=/etc,upperdir=$d/u,workdir=$d/w /etc; r=$?; rm -rf $d; exit $r']);
  if (probe.status !== 0) return `overlayfs on /etc in a mount namespace does not work here: ${String(probe.stderr).trim()}`;
  return undefined;
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(argv: string[], timeoutMs = 15_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function must(argv: string[]): Promise<Result> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

export class NetNs {
  private readonly daemons: ChildProcess[] = [];

  private constructor(readonly name: string) {}

  /** A fresh namespace with lo up and the given extra addresses on it. */
  static async create(addresses: string[]): Promise<NetNs> {
    const ns = new NetNs(`zcc-dnsos-${process.pid}-${randomBytes(3).toString('hex')}`);
    await must(['ip', 'netns', 'add', ns.name]);
    await must(['ip', '-n', ns.name, 'link', 'set', 'lo', 'up']);
    for (const a of addresses) await must(['ip', '-n', ns.name, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    return ns;
  }

  exec(argv: string[]): Promise<Result> {
    return run(['ip', 'netns', 'exec', this.name, ...argv]);
  }

  /**
   * dnsmasq on address:53 answering `records` (name,ip) from its configuration, and NXDOMAIN
   * for other names in `zone`, like a real resolver (without --local it would say REFUSED).
   */
  async startDnsmasq(address: string, zone: string, records: Array<[string, string]>): Promise<void> {
    const args = ['-k', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${address}`, '--port=53', '--pid-file=', '--log-queries', '--log-facility=-', `--local=/${zone}/`];
    const child = spawn('ip', ['netns', 'exec', this.name, 'dnsmasq', ...args, ...records.map(([n, ip]) => `--host-record=${n},${ip}`)], { stdio: 'ignore' });
    this.daemons.push(child);
    const [name, ip] = records[0] as [string, string];
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`dnsmasq on ${address} exited ${child.exitCode}`);
      const r = await this.exec(['dig', `@${address}`, '+short', '+tries=1', '+time=1', name]);
      return r.stdout.trim() === ip;
    }, 10_000, `dnsmasq on ${address}`);
  }

  async destroy(): Promise<void> {
    for (const d of this.daemons) {
      const gone = new Promise((r) => d.once('exit', r));
      if (d.exitCode === null && d.signalCode === null && d.kill('SIGTERM')) await gone;
    }
    await run(['ip', 'netns', 'del', this.name]);
  }
}

export interface AgentEvent {
  event: string;
  [k: string]: unknown;
}

/**
 * The fixture agent in `ns`, with /etc an overlay over the real one whose upper layer is
 * `upper` (so /etc/resolv.conf is upper/resolv.conf). With `bindFile`, that file is also
 * bind-mounted over /etc/resolv.conf, as Docker does, which makes rename() over it fail;
 * `readOnlyEtc` then makes /etc itself read-only, as a hardened systemd unit does.
 */
export class AgentProc {
  readonly events: AgentEvent[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(ns: NetNs, o: { upper: string; work: string; stateDir: string; bindFile?: string; readOnlyEtc?: boolean; pollMs?: number }) {
    const script = [
      'set -e',
      'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc',
      'if [ -n "$3" ]; then mount --bind "$3" /etc/resolv.conf; fi',
      // systemd's ProtectSystem=strict + ReadWritePaths=/etc/resolv.conf: /etc read-only, the file not.
      'if [ "$4" = ro ]; then mount -o remount,ro /etc; fi',
      'shift 4',
      'exec "$@"',
    ].join('\n');
    // ip netns exec and unshare exec (no fork) and sh execs node: child.pid is the agent itself.
    const argv = ['netns', 'exec', ns.name, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', o.upper, o.work, o.bindFile ?? '', o.readOnlyEtc ? 'ro' : 'rw'];
    this.child = spawn('ip', [...argv, process.execPath, '--import', 'tsx', FIXTURE, o.stateDir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ZCC_TEST_DNS_POLL_MS: String(o.pollMs ?? 5_000) },
    });
    let buf = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) this.events.push(JSON.parse(l) as AgentEvent);
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first event matching `pred`, waiting up to `timeoutMs`; fails early if the agent dies. */
  waitEvent(pred: (e: AgentEvent) => boolean, timeoutMs = 20_000, what = 'agent event'): Promise<AgentEvent> {
    return waitUntil(() => {
      const e = this.events.find(pred);
      if (e) return e;
      if (!this.running) throw new Error(`agent exited before ${what}; stderr:\n${this.stderr}`);
      return undefined;
    }, timeoutMs, what);
  }

  /** Run a command in the agent's namespaces: it sees the agent's /etc/resolv.conf. */
  inside(argv: string[]): Promise<Result> {
    return run(['nsenter', '-t', String(this.pid), '-m', '-n', '--', ...argv]);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.kill('SIGTERM');
    return this.exited;
  }
}
