// Real clients against real servers through the kernel intercept, in a network namespace of
// their own: curl downloads 100 MiB by app name (resolved by the system resolver through the
// agent's DNS) and checks its SHA-256; ssh logs in to Debian's sshd behind the connector and
// pipes data through it; socat talks TCP and UDP, and reaches a server on a random port of a
// segment's range, while the ports just outside the range are refused.
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_PORTS, RANGE_PORTS, seededBytes } from '../fixtures/kernel-apps.js';
import { waitUntil } from '../helpers/log-capture.js';
import { AgentFixture, exec, Netns, netnsUnavailable } from './netns.js';

const NAME = 'test/intercept-kernel/real-clients';
const skip = await netnsUnavailable();
if (skip) console.log(`SKIP ${NAME}: ${skip}`);

/** Why these programs cannot run here (undefined: they can). */
function missing(programs: readonly string[], pkg: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat('/usr/sbin');
  const absent = programs.filter((p) => (p.startsWith('/') ? !existsSync(p) : !dirs.some((d) => d && existsSync(join(d, p)))));
  return absent.length ? `${absent.join(', ')} not found (Debian: apt-get install ${pkg})` : undefined;
}
const noSocat = skip ? undefined : missing(['socat'], 'socat');
const noSsh = skip ? undefined : missing(['/usr/sbin/sshd', 'ssh', 'ssh-keygen'], 'openssh-server openssh-client');
if (noSocat) console.log(`SKIP ${NAME} (socat tests): ${noSocat}`);
if (noSsh) console.log(`SKIP ${NAME} (ssh test): ${noSsh}`);

const DOWNLOAD_BYTES = 100 << 20;
const SYNTHETIC = /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/;
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

interface ClientResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** Killed at its deadline. */
  timedOut: boolean;
  /** SHA-256 and length of stdout (kept too unless `hashOnly`). */
  sha256: string;
  bytes: number;
  ms: number;
}

interface ClientOptions {
  /** Written to stdin at once; stdin ends after it unless `conversation` is given. */
  input?: string | Buffer;
  /** Datagrams or lines sent one by one, each after the previous one's echo came back; then the client is stopped. */
  conversation?: string[];
  /** Hash stdout without keeping it. */
  hashOnly?: boolean;
  timeoutMs?: number;
}

/** A client in the namespace; stdout is streamed (and hashed), never buffered by a max size. */
function client(ns: Netns, file: string, args: readonly string[], opts: ClientOptions = {}): Promise<ClientResult> {
  const started = performance.now();
  const child = spawn('ip', ['netns', 'exec', ns.name, file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let bytes = 0;
  let stderr = '';
  let onOutput = (): void => undefined;
  child.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
    if (!opts.hashOnly) kept.push(d);
    onOutput();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined); // a client that exits early closes its stdin
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 20_000);
  const exited = new Promise<ClientResult>((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(kept), stderr, timedOut, sha256: hash.digest('hex'), bytes, ms: performance.now() - started });
    }),
  );
  if (opts.conversation) {
    const lines = opts.conversation;
    let sent = 0;
    let expected = '';
    const next = (): void => {
      if (!Buffer.concat(kept).toString().startsWith(expected)) return;
      if (sent === lines.length) {
        onOutput = () => undefined;
        child.kill('SIGTERM'); // every echo is back: a UDP client would otherwise wait for more
        return;
      }
      expected += lines[sent]!;
      child.stdin.write(lines[sent++]!);
    };
    onOutput = next;
    next();
  } else {
    child.stdin.end(opts.input ?? '');
  }
  return exited;
}

interface Daemon {
  readonly log: () => string;
  stop(): Promise<void>;
}

/** A server in the namespace, ready once its stderr matches `ready`; fails if it exits first. */
async function daemon(ns: Netns, file: string, args: readonly string[], ready: RegExp, what: string): Promise<Daemon> {
  const child = spawn('ip', ['netns', 'exec', ns.name, file, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const gone = new Promise((r) => child.once('close', r));
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const d: Daemon = {
    log: () => log,
    async stop() {
      if (!exited()) child.kill('SIGTERM');
      await gone;
    },
  };
  try {
    await waitUntil(() => exited() || ready.test(log), 10_000, `${what} ready`);
  } catch (err) {
    await d.stop();
    throw new Error(`${(err as Error).message}\n${log}`);
  }
  if (exited()) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log}`);
  return d;
}

describe.skipIf(!!skip)('real clients through the kernel intercept, in a network namespace', () => {
  let ns: Netns;
  let fixture: AgentFixture;
  let stateDir: string;
  let tmp: string;
  let netnsEtc: string | undefined;

  /**
   * An app name as the system resolver in the namespace sees it (agent DNS on 127.0.0.1:53).
   * Not `ahostsv4`: AF_INET with AI_ADDRCONFIG finds nothing where loopback is the only address.
   */
  const lookup = async (name: string): Promise<string> => {
    const r = await ns.run('getent', ['ahosts', name]);
    const ip = r.stdout.split(/\s+/)[0] ?? '';
    expect(ip, `getent ahosts ${name}: exit ${r.code} ${r.stderr}`).toMatch(SYNTHETIC);
    return ip;
  };
  const gated = async (ip: string): Promise<boolean> => (await ns.run('nft', ['list', 'set', 'inet', 'zcc', 'gated'])).stdout.includes(ip);

  beforeAll(async () => {
    ns = await Netns.create();
    stateDir = await mkdtemp(join(tmpdir(), 'zcc-kstate-'));
    tmp = await mkdtemp(join(tmpdir(), 'zcc-real-clients-'));
    // `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf: every
    // client in the namespace then resolves app names through the agent's DNS, as on a laptop.
    netnsEtc = join('/etc/netns', ns.name);
    await mkdir(netnsEtc, { recursive: true });
    await writeFile(join(netnsEtc, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n');
    ({ fixture } = await AgentFixture.start(ns, { stateDir }));
  });

  afterAll(async () => {
    await fixture?.stop();
    await ns?.destroy();
    if (netnsEtc) await rm(netnsEtc, { recursive: true, force: true });
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('curl downloads 100 MiB from http://web.kern.test/ by name; its SHA-256 is the server content\'s', { timeout: 180_000 }, async () => {
    const ip = await lookup('web.kern.test');
    const seed = `zcc-${randomBytes(4).toString('hex')}`;
    const expected = createHash('sha256');
    for (const chunk of seededBytes(seed, DOWNLOAD_BYTES)) expected.update(chunk);
    const r = await client(ns, 'curl', ['-sS', '--fail', '-m', '150', '-w', '%{stderr}%{remote_ip} %{size_download}\n', `http://web.kern.test/seeded/${seed}/${DOWNLOAD_BYTES}`], {
      hashOnly: true,
      timeoutMs: 160_000,
    });
    expect(r.code, r.stderr).toBe(0);
    // curl connected to the synthetic IP the agent's DNS gave out: the bytes came through the intercept.
    expect(r.stderr.trim()).toBe(`${ip} ${DOWNLOAD_BYTES}`);
    expect(r.bytes).toBe(DOWNLOAD_BYTES);
    expect(r.sha256).toBe(expected.digest('hex'));
    console.log(`curl: 100 MiB through the kernel intercept in ${(r.ms / 1000).toFixed(1)} s (${(DOWNLOAD_BYTES / (1 << 20) / (r.ms / 1000)).toFixed(0)} MiB/s)`);
  });

  it.skipIf(!!noSsh)('ssh logs in to a real sshd behind the connector and pipes 4 MiB through sha256sum', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmp, 'sshd-'));
    const keygen = async (file: string): Promise<void> => {
      const r = await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'zcc-test', '-f', file]);
      expect(r.code, r.stderr).toBe(0);
    };
    await keygen(join(dir, 'host_key'));
    await keygen(join(dir, 'user_key'));
    await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')));
    const config = join(dir, 'sshd_config');
    await writeFile(
      config,
      [
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_key')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UseDNS no',
        'PrintMotd no',
        'PrintLastLog no',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    // sshd insists on its privilege separation directory, which only its init scripts create.
    if (!existsSync('/run/sshd')) {
      await mkdir('/run/sshd', { mode: 0o755 });
      await chmod('/run/sshd', 0o755);
    }
    const check = await exec('/usr/sbin/sshd', ['-t', '-f', config]);
    expect(check.code, check.stderr).toBe(0);

    const sshd = await daemon(ns, '/usr/sbin/sshd', ['-D', '-e', '-f', config, '-p', String(APP_PORTS.sshd)], new RegExp(`Server listening on 127\\.0\\.0\\.1 port ${APP_PORTS.sshd}`), 'sshd');
    try {
      const payload = randomBytes(4 << 20);
      const r = await client(
        ns,
        'ssh',
        [
          '-F', '/dev/null',
          '-i', join(dir, 'user_key'),
          '-o', 'IdentitiesOnly=yes',
          '-o', 'StrictHostKeyChecking=no',
          '-o', 'UserKnownHostsFile=/dev/null',
          '-o', 'BatchMode=yes',
          '-o', 'LogLevel=ERROR',
          '-o', 'ConnectTimeout=10',
          'root@ssh.kern.test',
          'echo "zcc ssh $SSH_CONNECTION"; sha256sum',
        ],
        { input: payload, timeoutMs: 40_000 },
      );
      expect(r.code, `${r.stderr}\nsshd: ${sshd.log()}`).toBe(0);
      const [hello, sum] = r.stdout.toString().split('\n');
      // The sshd sees the connector (loopback) connecting to its own port, 2222 behind port 22.
      expect(hello).toMatch(new RegExp(`^zcc ssh 127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${APP_PORTS.sshd}$`));
      expect(sum).toBe(`${sha256(payload)}  -`);
      await waitUntil(() => sshd.log().includes('Accepted publickey for root from 127.0.0.1'), 5000, 'sshd log of the login');
      console.log(`ssh: login and 4 MiB through sha256sum in ${r.ms.toFixed(0)} ms`);
    } finally {
      await sshd.stop();
    }
  });

  it.skipIf(!!noSocat)('socat: 1 MiB over TCP to the echo app, and UDP datagrams to the UDP echo app', async () => {
    await lookup('app.kern.test');
    const payload = randomBytes(1 << 20);
    // -t 10: after our EOF, wait for the echo app to finish and close its side (half-close).
    const tcp = await client(ns, 'socat', ['-t', '10', '-', `TCP:app.kern.test:${APP_PORTS.echo},connect-timeout=10`], { input: payload });
    expect(tcp.code, tcp.stderr).toBe(0);
    expect(tcp.bytes).toBe(payload.length);
    expect(tcp.sha256).toBe(sha256(payload));

    const datagrams = ['first datagram\n', 'second datagram\n', 'third datagram\n'];
    const udp = await client(ns, 'socat', ['-', `UDP:app.kern.test:${APP_PORTS.udpEcho}`], { conversation: datagrams, timeoutMs: 15_000 });
    expect(udp.timedOut, udp.stderr).toBe(false); // stopped after the last echo came back
    expect(udp.stdout.toString()).toBe(datagrams.join(''));
  });

  it.skipIf(!!noSocat)('reaches a server on a random port inside a segment range; the ports just outside it are refused', async () => {
    const port = RANGE_PORTS.from + 1 + randomInt(RANGE_PORTS.to - RANGE_PORTS.from - 1);
    console.log(`range ${RANGE_PORTS.from}-${RANGE_PORTS.to}: random port ${port}`);
    const script = join(tmp, 'range-app.sh');
    await writeFile(script, '#!/bin/sh\nprintf "port %s\\n" "$SOCAT_SOCKPORT"\nexec cat\n', { mode: 0o755 });
    // The cloud answers DNS for an app only when its connector reaches the segment's first port
    // (agent-handler.ts answerReach), so the app listens there too, like a real service would.
    const servers: Daemon[] = [];
    try {
      for (const p of [RANGE_PORTS.from, port]) {
        servers.push(await daemon(ns, 'socat', ['-d', '-d', `TCP-LISTEN:${p},bind=127.0.0.1,reuseaddr,fork`, `EXEC:${script}`], /listening on/, `socat server on ${p}`));
      }
      const ip = await lookup('range.kern.test');

      const inside = await client(ns, 'socat', ['-t', '10', '-', `TCP:range.kern.test:${port},connect-timeout=10`], { input: 'hello inside the range\n' });
      expect(inside.code, inside.stderr).toBe(0);
      expect(inside.stdout.toString()).toBe(`port ${port}\nhello inside the range\n`);

      // The accepted connection taught the kernel this app's ports: outside them, RST to the SYN.
      await waitUntil(() => gated(ip), 5000, 'range IP gated');
      const below = await client(ns, 'socat', ['-', `TCP:range.kern.test:${RANGE_PORTS.from - 1},connect-timeout=10`], { input: 'x' });
      expect(below.code).not.toBe(0);
      expect(below.stderr).toMatch(/Connection refused/);
      const above = await client(ns, 'nc', ['-v', '-z', '-w', '10', 'range.kern.test', String(RANGE_PORTS.to + 1)]);
      expect(above.code).not.toBe(0);
      expect(above.stderr).toMatch(/Connection refused/);
      console.log(`refused outside the range: port ${RANGE_PORTS.from - 1} (socat) in ${below.ms.toFixed(0)} ms, port ${RANGE_PORTS.to + 1} (nc) in ${above.ms.toFixed(0)} ms`);
    } finally {
      for (const d of servers) await d.stop();
    }
  });
});
