import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollWithToken } from '../../src/agent/identity/token-enroll.js';
import { AgentService } from '../../src/agent/service.js';
import { TunnelClient } from '../../src/agent/tunnel/tunnel-client.js';
import { createAgentClient } from '../../src/common/localapi-client.js';
import { FINGERPRINT, Harness } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';

/** Sends a line through a microtunnel of the agent and returns the echo. */
async function echoVia(h: Harness, host: string): Promise<string> {
  const stream = await h.agent.dial({ host, port: 7 });
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  stream.end(`hello ${host}`);
  await ended;
  return Buffer.concat(chunks).toString();
}

const opened = (h: Harness): number => h.cloud.edge.counters.get(h.tenantId)!.microtunnelsOpened;

describe('several tenants in one agent', () => {
  let echo: TestServer;
  let acme: Harness;
  let partner: Harness;

  beforeAll(async () => {
    echo = await echoServer();
    const to = `127.0.0.1:${echo.port}`;
    acme = await new Harness({
      tenantId: 'acme',
      servers: { '*.shared.test:7': to, 'dup.both.test:7': to, 'only.acme.test:7': to },
      segments: [
        { id: 'shared', name: 'Shared wildcard', domains: ['*.shared.test'], tcpPorts: [{ from: 7, to: 7 }] },
        { id: 'dup', name: 'Same name in both', domains: ['dup.both.test'], tcpPorts: [{ from: 7, to: 7 }] },
        { id: 'own', name: 'Acme only', domains: ['only.acme.test'], tcpPorts: [{ from: 7, to: 7 }] },
      ],
    }).start();
    partner = await new Harness({
      tenantId: 'partner',
      servers: { 'wiki.shared.test:7': to, 'dup.both.test:7': to, 'only.partner.test:7': to },
      segments: [
        { id: 'wiki', name: 'Partner wiki', domains: ['wiki.shared.test'], tcpPorts: [{ from: 7, to: 7 }] },
        { id: 'dup', name: 'Same name in both', domains: ['dup.both.test'], tcpPorts: [{ from: 7, to: 7 }] },
        { id: 'own', name: 'Partner only', domains: ['only.partner.test'], tcpPorts: [{ from: 7, to: 7 }] },
      ],
    }).start();
    // The partner harness enrolled a device of its own; that identity now joins acme's agent.
    partner.agent.stop();
    acme.agent.addTenant({ id: 'partner', name: 'Partner', edge: partner.cloud.tunnel, serverName: 'localhost', caPem: partner.cloud.caPem, identity: partner.identity });
    await acme.agent.tenants.find((t) => t.id === 'partner')!.tunnel.waitConnected();
  });

  afterAll(async () => {
    await partner?.stop();
    await acme?.stop();
    await echo?.close();
  });

  it("reaches each tenant's app through that tenant's own Z-Tunnel (edge counters)", async () => {
    const [a0, p0] = [opened(acme), opened(partner)];
    expect(await echoVia(acme, 'only.acme.test')).toBe('hello only.acme.test');
    expect([opened(acme) - a0, opened(partner) - p0]).toEqual([1, 0]);
    expect(await echoVia(acme, 'only.partner.test')).toBe('hello only.partner.test');
    expect([opened(acme) - a0, opened(partner) - p0]).toEqual([1, 1]);
  });

  it('resolves overlapping domains by the documented precedence', async () => {
    // Most specific domain wins across tenants; on an exact tie the tenant added first wins.
    expect(acme.agent.appFor('wiki.shared.test')).toEqual({ tenant: 'partner' });
    expect(acme.agent.appFor('docs.shared.test')).toEqual({ tenant: 'acme' });
    expect(acme.agent.appFor('dup.both.test')).toEqual({ tenant: 'acme' });
    const [a0, p0] = [opened(acme), opened(partner)];
    await echoVia(acme, 'wiki.shared.test');
    await echoVia(acme, 'docs.shared.test');
    await echoVia(acme, 'dup.both.test');
    expect([opened(acme) - a0, opened(partner) - p0]).toEqual([2, 1]);
    // One pool for both: synthetic IPs are unique across tenants and carry their owner.
    const wiki = acme.agent.pool.assign('wiki.shared.test', 'partner');
    const docs = acme.agent.pool.assign('docs.shared.test', 'acme');
    expect(wiki).not.toBe(docs);
    expect(acme.agent.pool.lookupIp(wiki)).toEqual({ fqdn: 'wiki.shared.test', tenant: 'partner' });
  });

  it('routes past a tenant turned off, and to it again once it is back on', async () => {
    expect(acme.agent.appFor('dup.both.test')).toEqual({ tenant: 'acme' });
    acme.agent.setEnabled('acme', false);
    try {
      // The exact tie now goes to the tenant still on; the primary's own names go nowhere.
      expect(acme.agent.appFor('dup.both.test')).toEqual({ tenant: 'partner' });
      expect(acme.agent.appFor('docs.shared.test')).toBeUndefined();
      expect(acme.agent.enabledTenant('acme')).toBeUndefined();
    } finally {
      acme.agent.setEnabled('acme', true);
    }
    expect(acme.agent.appFor('dup.both.test')).toEqual({ tenant: 'acme' });
    expect(acme.agent.enabledTenant('acme')?.id).toBe('acme');
    await acme.agent.tenants.find((t) => t.id === 'acme')?.tunnel.waitConnected();
  });

  it("refuses the partner's certificate at the primary's edge", async () => {
    const stray = new TunnelClient({ tenant: 'partner', edge: acme.cloud.tunnel, serverName: 'localhost', caPem: acme.cloud.caPem, identity: partner.identity, log: acme.logs.log.child({ proc: 'stray' }) });
    stray.start();
    await waitUntil(() => stray.status.state === 'error', 10_000, 'stray tunnel refused');
    stray.stop();
    await acme.logs.waitFor((l) => String(l.msg).startsWith('Z-Tunnel handshake refused') && String(l.proc) === 'cloud');
  });

  it('add and remove a tenant at runtime through the local API', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zcc-mt-'));
    await chmod(dir, 0o700);
    const socketPath = join(dir, 'localapi.sock');
    const service = new AgentService({
      agent: acme.agent,
      log: acme.logs.log.child({ proc: 'service' }),
      socketPath,
      stateDir: dir,
      enroll: (req) => enrollWithToken({ tenant: req.tenant, token: req.token, device: 'runtime-device', fingerprint: FINGERPRINT, enroll: req.enroll, serverName: req.serverName, caPem: req.caPem }),
    });
    await service.start();
    const client = createAgentClient({ socketPath });
    try {
      await client.request('removeTenant', { tenant: 'partner' });
      expect(acme.agent.appFor('only.partner.test')).toBeUndefined();
      await expect(echoVia(acme, 'only.partner.test')).rejects.toMatchObject({ reason: 'not-an-app' });
      await client.request('addTenant', {
        tenant: 'partner',
        name: 'Partner',
        edge: partner.cloud.tunnel,
        enroll: partner.cloud.enroll,
        serverName: 'localhost',
        caPem: partner.cloud.caPem,
        token: partner.token,
      });
      await waitUntil(async () => (await client.request('status', {})).tenants.find((t) => t.id === 'partner')?.connection === 'connected', 10_000, 'partner connected again');
      expect(await echoVia(acme, 'only.partner.test')).toBe('hello only.partner.test');
    } finally {
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("keeps the primary's apps working when the partner edge dies, and shows the partner's error", async () => {
    await partner.cloud.close();
    const p = acme.agent.tenants.find((t) => t.id === 'partner')!;
    await waitUntil(() => p.tunnel.status.state === 'error', 20_000, 'partner tunnel error');
    expect(p.tunnel.status.error).toBeTruthy();
    expect(await echoVia(acme, 'only.acme.test')).toBe('hello only.acme.test');
    await expect(echoVia(acme, 'only.partner.test')).rejects.toMatchObject({ reason: 'tunnel-down' });
  });
});
