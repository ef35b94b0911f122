// `zcc agent` as its own process, driven only through the CLI a user has: `zcc login` (the
// browser part played by the scripted browser), `zcc status --json`, `zcc diag export`,
// `zcc config set`. The tenant's auth timeout is short: an open microtunnel outlives it, a new
// one is refused with needs-reauth, and `zcc login` brings new ones back.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/common/localapi-schema.js';
import { engEchoCloud, type SamlCloud, TENANT } from '../identity/saml-fixture.js';
import { waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';

const ZCC = join(import.meta.dirname, '..', '..', 'bin', 'zcc');
const AUTH_TIMEOUT_S = 8;

/** Runs a zcc command to its end; `onLine` sees stdout lines as they come (for the login URL). */
function zcc(args: string[], onLine?: (line: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ZCC, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) onLine?.(l);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function echoOnce(sock: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= text.length) {
        sock.off('data', onData);
        resolve(got);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.resume();
    sock.write(text);
  });
}

describe('zcc agent, zcc login and the auth timeout, as processes', { timeout: 120_000 }, () => {
  let app: TestServer;
  let s: SamlCloud;
  let dir: string;
  let agent: ZccProcess;
  let socket: string;
  let socks: { host: string; port: number };

  const status = async (): Promise<AgentStatus> => {
    const r = await zcc(['status', '--json', '--socket', socket]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as AgentStatus;
  };
  /** `zcc login` as the user runs it; the scripted browser opens the URL it prints. */
  const login = async (): Promise<string> => {
    let browsing: Promise<unknown> | undefined;
    const r = await zcc(['login', '--socket', socket, '--no-browser'], (line) => {
      const url = /^\s+(https:\/\/\S+)$/.exec(line)?.[1];
      if (url) browsing = s.browser.login(url, s.users.alice.user, s.users.alice.password);
    });
    await browsing;
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    app = await echoServer();
    s = await engEchoCloud(app.port, AUTH_TIMEOUT_S).start();
    dir = await mkdtemp(join(tmpdir(), 'zcc-agent-cli-'));
    socket = join(dir, 'localapi.sock');
    const caFile = join(dir, 'cloud-ca.pem');
    await writeFile(caFile, s.cloud.caPem);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ tenants: [{ id: TENANT, name: 'Acme', cloud: { edge: s.cloud.tunnel, enroll: s.cloud.enroll, serverName: 'localhost', caFile } }] }));
    agent = await spawnZcc(['agent', '--config', join(dir, 'config.json'), '--managed', 'none', '--state-dir', join(dir, 'state'), '--socket', socket, '--no-dns', '--socks', '127.0.0.1:0'], {}, 60_000);
    const [host, port] = (agent.ready.socks as string).split(':');
    socks = { host: host!, port: Number(port) };
  }, 120_000);

  afterAll(async () => {
    await agent?.stop('SIGTERM');
    await s?.stop();
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('enrolls the device with zcc login (SAML through the browser), sealed 0600', async () => {
    expect((await status()).tenants[0]).toMatchObject({ id: TENANT, enrollment: 'not-enrolled' });
    expect(await login()).toMatch(/signed in to acme as alice@acme\.test/);
    const t = await waitUntil(async () => {
      const x = (await status()).tenants[0]!;
      return x.connection === 'connected' && x;
    }, 15_000, 'connected');
    expect(t).toMatchObject({ enrollment: 'enrolled', needsReauth: false, user: s.users.alice.user });
    expect((await stat(join(dir, 'state', `tenant-${TENANT}.sealed`))).mode & 0o777).toBe(0o600);
  });

  it('keeps an open microtunnel past the auth timeout, refuses a new one with needs-reauth, and zcc login restores it', async () => {
    const open = await socksConnect(socks, 'eng.acme.test', 7);
    expect(await echoOnce(open, 'before expiry\n')).toBe('before expiry\n');
    const expired = await waitUntil(async () => {
      const x = (await status()).tenants[0]!;
      return x.needsReauth && x;
    }, (AUTH_TIMEOUT_S + 10) * 1000, 'needsReauth in zcc status --json');
    expect(Date.parse(expired.authExpiresAt!)).toBeLessThanOrEqual(Date.now());
    await expect(socksConnect(socks, 'eng.acme.test', 7)).rejects.toThrow(/SOCKS reply/);
    // The reply may reach the client before the agent's log line reaches its stderr.
    await waitUntil(() => /"reason":"needs-reauth","msg":"connection failed"/.test(agent.stderr()), 10_000, 'needs-reauth logged by the agent');
    expect(await echoOnce(open, 'after expiry\n')).toBe('after expiry\n');

    await login();
    const fresh = await socksConnect(socks, 'eng.acme.test', 7);
    expect(await echoOnce(fresh, 'signed in again\n')).toBe('signed in again\n');
    expect((await status()).tenants[0]!.needsReauth).toBe(false);
    open.destroy();
    fresh.destroy();
  });

  it('changes a setting with zcc config set and lists it with zcc config show', async () => {
    const set = await zcc(['config', 'set', 'dns.searchDomains', '["acme.test"]', '--socket', socket]);
    expect(set.code, set.stderr).toBe(0);
    const show = await zcc(['config', 'show', '--socket', socket]);
    expect(show.stdout).toMatch(/^dns\.searchDomains\s+\["acme\.test"\]$/m);
    const bad = await zcc(['config', 'set', 'dns.searchDomains', '42', '--socket', socket]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/dns\.searchDomains/);
  });

  it('exports diagnostics with zcc diag export: 0600, no secret inside', async () => {
    const r = await zcc(['diag', 'export', '--socket', socket]);
    expect(r.code, r.stderr).toBe(0);
    const path = /written to (\S+)/.exec(r.stdout)![1]!;
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const text = await readFile(path, 'utf8');
    expect(text).toContain('"logs"');
    for (const secret of s.secrets()) expect(text).not.toContain(secret);
    for (const secret of s.secrets()) expect(agent.stderr()).not.toContain(secret);
  });
});
