import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentRuntime } from '../../src/agent/runtime/runtime.js';
import { createAgentClient, type AgentClient } from '../../src/common/localapi-client.js';
import { LogRing } from '../../src/common/log-ring.js';
import type { AgentStatus } from '../../src/common/localapi-schema.js';
import { engEchoCloud, FP, type SamlCloud, TENANT } from '../identity/saml-fixture.js';
import { LogCapture, waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

/** Sends a line through the runtime's SOCKS front end to the echo app and reads it back. */
async function echoThrough(socks: string, text: string): Promise<string> {
  const [host, port] = socks.split(':');
  const sock = await socksConnect({ host: host!, port: Number(port) }, 'eng.acme.test', 7);
  try {
    return await new Promise<string>((resolve, reject) => {
      let got = '';
      sock.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.length >= text.length) resolve(got);
      });
      sock.on('error', reject);
      sock.resume();
      sock.write(text);
    });
  } finally {
    sock.destroy();
  }
}

describe('zcc agent runtime: configuration, sealed enrollment by browser sign-in, managed keys, local API', () => {
  let app: TestServer;
  let s: SamlCloud;
  let dir: string;
  let runtime: AgentRuntime | undefined;
  let client: AgentClient;
  const ring = new LogRing();
  const logs = new LogCapture('runtime', ring);
  let userFile: string;
  let managedFile: string;
  let socketPath: string;

  const start = async (): Promise<{ socks?: string }> => {
    runtime = new AgentRuntime({
      stateDir: join(dir, 'state'),
      socketPath,
      configFile: userFile,
      managed: { file: managedFile, format: 'json' },
      log: logs.log.child({ proc: 'agent' }),
      logs: ring,
      fingerprint: FP,
      device: 'runtime-test',
      noDns: true,
      socks: '127.0.0.1:0',
      configPollMs: 200,
      network: { pollIntervalMs: 0 },
    });
    return runtime.start();
  };
  const status = (): Promise<AgentStatus> => client.request('status', {});
  const tenant = async () => (await status()).tenants.find((t) => t.id === TENANT)!;

  beforeAll(async () => {
    app = await echoServer();
    s = await engEchoCloud(app.port).start();
    dir = await mkdtemp(join(tmpdir(), 'zcc-runtime-'));
    userFile = join(dir, 'config.json');
    managedFile = join(dir, 'managed.json');
    socketPath = join(dir, 'localapi.sock');
    await writeFile(userFile, JSON.stringify({ tenants: [{ id: TENANT, name: 'Acme', cloud: { edge: s.cloud.tunnel, enroll: s.cloud.enroll, serverName: 'localhost', caPem: s.cloud.caPem } }] }));
    await writeFile(managedFile, JSON.stringify({ dns: { domainValidation: true } }));
    client = createAgentClient({ socketPath });
  });

  afterAll(async () => {
    if (process.env.DUMP) for (const l of logs.raw) if (/"level":[3-6]0/.test(l)) console.log(l.slice(0, 300));
    await runtime?.stop();
    await s?.stop();
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts with a configured tenant it is not enrolled with, and says so', async () => {
    await start();
    const t = await tenant();
    expect(t).toMatchObject({ enrollment: 'not-enrolled', needsReauth: true, connection: 'disconnected', managed: false, canToggle: true });
    expect(t.error).toContain('zcc login --tenant acme');
    expect((await status()).config).toEqual({ managedKeys: ['dns.domainValidation'] });
  });

  it('enrolls through a browser sign-in started over the local API, then tunnels', async () => {
    const { loginUrl } = await client.request('reauth', { tenant: TENANT });
    expect(loginUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1\/login\/start\?/);
    await s.browser.login(loginUrl!, s.users.alice.user, s.users.alice.password);
    const t = await waitUntil(async () => {
      const x = await tenant();
      return x.connection === 'connected' && x;
    }, 15_000, 'tenant connected');
    expect(t).toMatchObject({ enrollment: 'enrolled', user: s.users.alice.user, needsReauth: false, forwarding: { profile: 'always', action: 'tunnel' } });
  });

  it('comes back enrolled from its sealed state after a restart, without a sign-in', async () => {
    await runtime!.stop();
    const ready = await start();
    await runtime!.waitConnected();
    expect((await tenant()).enrollment).toBe('enrolled');
    expect(await echoThrough(ready.socks!, 'hello through the runtime\n')).toBe('hello through the runtime\n');
  });

  it('refuses to change a managed key and saves an unmanaged one in the user file', async () => {
    await expect(client.request('setSetting', { key: 'dns.domainValidation', value: false })).rejects.toThrow(/managed/);
    const out = await client.request('setSetting', { key: 'dns.searchDomains', value: ['acme.test'] });
    expect(out.value).toEqual(['acme.test']);
    expect(JSON.parse(await readFile(userFile, 'utf8')).dns).toEqual({ searchDomains: ['acme.test'] });
    const { settings } = await client.request('settings', {});
    expect(settings.find((x) => x.key === 'dns.domainValidation')).toMatchObject({ value: true, managed: true });
    expect(settings.find((x) => x.key === 'dns.searchDomains')).toMatchObject({ value: ['acme.test'], managed: false });
    expect(settings.find((x) => x.key === 'logging.level')).toMatchObject({ value: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] });
    expect(settings.some((x) => x.key.startsWith('tenants'))).toBe(false);
  });

  it('keeps a tenant (tunnel and identity) whose CA file became unreadable, and says why', async () => {
    const good = await readFile(userFile, 'utf8');
    const cfg = JSON.parse(good) as { tenants: Array<{ cloud: Record<string, unknown> }> };
    cfg.tenants[0]!.cloud = { ...cfg.tenants[0]!.cloud, caPem: undefined, caFile: join(dir, 'missing-ca.pem') };
    await writeFile(userFile, JSON.stringify(cfg));
    await logs.waitFor((l) => l.msg === 'tenant configuration unreadable: left as it was', 10_000);
    expect((await tenant()).connection).toBe('connected');
    expect(await stat(join(dir, 'state', `tenant-${TENANT}.sealed`)).then(() => true)).toBe(true);
    const changes = (): number => logs.lines.filter((l) => l.msg === 'configuration changed').length;
    const before = changes();
    await writeFile(userFile, good);
    await waitUntil(() => changes() > before, 10_000, 'restored configuration applied');
    expect((await tenant()).connection).toBe('connected');
  });

  it('turns the tenant off and on through the configuration', async () => {
    await client.request('setTenantEnabled', { tenant: TENANT, enabled: false });
    expect(await tenant()).toMatchObject({ connection: 'disconnected', enabled: false });
    expect(JSON.parse(await readFile(userFile, 'utf8')).tenants[0].enabled).toBe(false);
    await client.request('setTenantEnabled', { tenant: TENANT, enabled: true });
    await runtime!.waitConnected();
  });

  it('keeps its last good configuration when the managed file breaks, says so, and keeps tunnelling', async () => {
    await writeFile(managedFile, '{ "dns": { "domainValidation": tru }');
    const st = await waitUntil(async () => {
      const x = await status();
      return x.config?.lastError && x;
    }, 10_000, 'config error in status');
    expect(st.config!.lastError!.file).toBe(managedFile);
    expect(st.config!.lastError!.message).toContain(managedFile);
    await expect(client.request('setSetting', { key: 'logging.level', value: 'debug' })).rejects.toThrow(/invalid|last good/);
    await writeFile(managedFile, JSON.stringify({ dns: { domainValidation: true } }));
    await waitUntil(async () => !(await status()).config?.lastError, 10_000, 'config error cleared');
    expect((await tenant()).connection).toBe('connected');
  });

  it('pins tenants when the administrator manages them: no add, remove or toggle', async () => {
    const tenants = JSON.parse(await readFile(userFile, 'utf8')).tenants;
    await writeFile(managedFile, JSON.stringify({ dns: { domainValidation: true }, tenants }));
    await waitUntil(async () => (await tenant()).managed === true, 10_000, 'tenant managed');
    expect((await tenant()).canToggle).toBe(false);
    await expect(client.request('setTenantEnabled', { tenant: TENANT, enabled: false })).rejects.toThrow(/managed/);
    await expect(client.request('removeTenant', { tenant: TENANT })).rejects.toThrow(/managed/);
    await expect(
      client.request('addTenant', { tenant: 'other', name: 'Other', edge: s.cloud.tunnel, enroll: s.cloud.enroll, serverName: 'localhost', caPem: s.cloud.caPem, token: 'x'.repeat(32) }),
    ).rejects.toThrow(/managed/);
    expect((await tenant()).connection).toBe('connected');
  });

  it('serves recent redacted log lines for diagnostics', async () => {
    const d = await client.request('diagnostics', { limit: 50 });
    expect(d.fingerprintHash).toBe(FP);
    expect(d.logs.length).toBeGreaterThan(0);
    expect(d.logs.some((l) => l.msg.includes('sign-in complete'))).toBe(true);
    const text = JSON.stringify(d);
    for (const secret of s.secrets()) expect(text).not.toContain(secret);
  });
});
