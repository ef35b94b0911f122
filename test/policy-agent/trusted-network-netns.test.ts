// The trusted-network monitor on a real (namespaced) network: `ip netns` with a veth, an
// address and a default route, plus `unshare -m` with a temp file bind-mounted over
// /etc/resolv.conf. Rewriting that file to match the criteria must flip the monitor to trusted
// and back, triggered by its watcher (the child polls never and nobody calls evaluate). Root only.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrustedNetworkChange } from '../../src/agent/policy/trusted-network-monitor.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHILD = path.join(ROOT, 'test', 'policy-agent', 'fixtures', 'monitor-child.ts');
const NS = `zcc-tn-${process.pid}`;

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || r.error?.message || `exit ${r.status}`}`);
}

/** Why this test cannot run here, or undefined when it can. */
function unsupported(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'network namespaces and bind mounts need root';
  for (const [cmd, args] of [['ip', ['netns', 'list']], ['unshare', ['-m', '--', 'true']]] as const) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
    if (r.error || r.status !== 0) return `${cmd} ${args.join(' ')} fails: ${r.error?.message ?? r.stderr.trim()}`;
  }
  return undefined;
}

const skipReason = unsupported();
if (skipReason) console.log(`SKIP trusted-network namespace test: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('TrustedNetworkMonitor in a network namespace', () => {
  let dir: string;
  let resolvConf: string;
  let child: ChildProcessWithoutNullStreams | undefined;
  let stderr = '';
  const events: TrustedNetworkChange[] = [];
  const waiters = new Set<() => void>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zcc-netns-'));
    resolvConf = path.join(dir, 'resolv.conf');
    await writeFile(resolvConf, 'nameserver 192.0.2.1\nsearch lan\n');
    ip('netns', 'add', NS);
    // A veth pair inside the namespace: an address in the trusted range and a default route.
    ip('-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    ip('-n', NS, 'addr', 'add', '10.77.0.2/24', 'dev', 'v0');
    for (const dev of ['lo', 'v0', 'v1']) ip('-n', NS, 'link', 'set', dev, 'up');
    ip('-n', NS, 'route', 'add', 'default', 'via', '10.77.0.1', 'dev', 'v0', 'onlink');
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.stdin.end();
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    spawnSync('ip', ['netns', 'del', NS]);
    await rm(dir, { recursive: true, force: true });
  });

  /** The first event from index `from` on that satisfies `pred`, within the deadline. */
  function waitFor(from: number, pred: (e: TrustedNetworkChange) => boolean, what: string, ms = 15_000): Promise<TrustedNetworkChange> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = events.slice(from).find(pred);
        if (hit) resolve(hit);
        return hit !== undefined;
      };
      if (check()) return;
      const waiter = (): void => {
        if (check()) done();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${ms} ms; events ${JSON.stringify(events)}; child stderr: ${stderr}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      waiters.add(waiter);
    });
  }

  it('flips to trusted when resolv.conf starts to match and back when it stops', async () => {
    const criteria = {
      match: 'all',
      networkRange: '10.77.0.0/24',
      defaultGateway: '10.77.0.1',
      dnsServers: ['10.77.0.53'],
      searchDomains: ['corp.example'],
    };
    const script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"';
    child = spawn('ip', ['netns', 'exec', NS, 'unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', resolvConf, process.execPath, '--import', 'tsx', CHILD], {
      cwd: ROOT,
      env: { ...process.env, ZCC_TEST_CRITERIA: JSON.stringify(criteria) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      events.push(JSON.parse(line) as TrustedNetworkChange);
      for (const w of [...waiters]) w();
    });

    const first = await waitFor(0, () => true, 'first evaluation', 60_000);
    expect(first).toMatchObject({ trusted: false, cause: 'start' });
    // The facts are the namespace's and the bind mount's, not the host's.
    expect(first.facts.addresses).toContain('10.77.0.2');
    expect(first.facts.defaultGateways).toEqual(['10.77.0.1']);
    expect(first.facts).toMatchObject({ dnsServers: ['192.0.2.1'], searchDomains: ['lan'] });
    expect(first.results).toEqual([
      { criterion: 'dnsServers', holds: false },
      { criterion: 'searchDomains', holds: false },
      { criterion: 'defaultGateway', holds: true },
      { criterion: 'networkRange', holds: true },
    ]);

    // In place (same inode): the bind mount shows the new content inside the namespace.
    let from = events.length;
    await writeFile(resolvConf, 'nameserver 10.77.0.53\nsearch corp.example\n');
    const trusted = await waitFor(from, (e) => e.trusted, 'flip to trusted');
    expect(trusted).toMatchObject({ cause: 'resolv-conf', facts: { dnsServers: ['10.77.0.53'], searchDomains: ['corp.example'] } });

    from = events.length;
    await writeFile(resolvConf, 'nameserver 10.77.0.53\nsearch lan\n');
    const untrusted = await waitFor(from, (e) => !e.trusted, 'flip back to untrusted');
    expect(untrusted).toMatchObject({ cause: 'resolv-conf', facts: { searchDomains: ['lan'] } });
    expect(untrusted.results).toContainEqual({ criterion: 'searchDomains', holds: false });

    from = events.length;
    await writeFile(resolvConf, 'search corp.example\nnameserver 10.77.0.53\n');
    expect(await waitFor(from, (e) => e.trusted, 'flip to trusted again')).toMatchObject({ cause: 'resolv-conf' });
  });
});
