import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentService } from '../../src/agent/service.js';
import { WatchEventSchema, type WatchEvent } from '../../src/common/localapi-schema.js';
import { echoApp, Harness } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('local API: the read-only-caller test needs root to act as another user; it is skipped');

function call(socketPath: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text || '{}') as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('agent local API over a Unix socket', () => {
  let echo: TestServer;
  let h: Harness;
  let service: AgentService;
  let dir: string;
  let socketPath: string;

  beforeAll(async () => {
    echo = await echoServer();
    h = await new Harness(echoApp(echo.port)).start();
    dir = await mkdtemp(join(tmpdir(), 'zcc-localapi-'));
    // Like /run/zcc: others may reach the socket; the socket itself decides what they may do.
    await chmod(dir, 0o755);
    socketPath = join(dir, 'localapi.sock');
    service = new AgentService({ agent: h.agent, log: h.logs.log.child({ proc: 'service' }), socketPath, stateDir: dir, fingerprintHash: 'ab'.repeat(32) });
    await service.start();
  });

  afterAll(async () => {
    await service?.stop();
    await h?.stop();
    await echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers status per tenant, validated by the shared schema', async () => {
    const { status, json } = await call(socketPath, 'POST', '/localapi/v1/status', {});
    expect(status).toBe(200);
    const tenants = json.tenants as Array<Record<string, unknown>>;
    expect(tenants[0]).toMatchObject({ id: 'acme', connection: 'connected', user: 'alice@acme.test', needsReauth: false, edge: h.cloud.tunnel });
    expect((tenants[0]!.segments as unknown[]).length).toBe(1);
    expect(json.fingerprintHash).toBe('ab'.repeat(32));
  });

  it('refuses requests carrying Origin or Referer, as a web page would send them', async () => {
    const browserHeaders: Array<Record<string, string>> = [{ origin: 'http://evil.example' }, { referer: 'http://evil.example/x' }];
    for (const headers of browserHeaders) {
      const { status, json } = await call(socketPath, 'POST', '/localapi/v1/status', {}, headers);
      expect(status).toBe(403);
      expect(json.code).toBe('browser-origin');
    }
  });

  it('rejects unknown requests and bad arguments with a message that says what and where', async () => {
    expect((await call(socketPath, 'POST', '/localapi/v1/nope', {})).status).toBe(404);
    const bad = await call(socketPath, 'POST', '/localapi/v1/setTenantEnabled', { tenant: 'acme', enabled: 'yes' });
    expect(bad.status).toBe(400);
    expect(String(bad.json.error)).toContain('enabled');
  });

  it('streams a snapshot first, then changes (tenant turned off and on)', async () => {
    const events: WatchEvent[] = [];
    const req = http.get({ socketPath, path: '/localapi/v1/watch' }, (res) => {
      let buf = '';
      res.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          events.push(WatchEventSchema.parse(JSON.parse(buf.slice(0, nl))));
          buf = buf.slice(nl + 1);
        }
      });
    });
    await waitUntil(() => events.length >= 1, 5000, 'snapshot');
    expect(events[0]!.type).toBe('snapshot');
    expect((await call(socketPath, 'POST', '/localapi/v1/setTenantEnabled', { tenant: 'acme', enabled: false })).status).toBe(200);
    await waitUntil(() => events.some((e) => e.type === 'changed' && e.status.tenants[0]!.connection === 'disconnected'), 5000, 'disconnected event');
    await call(socketPath, 'POST', '/localapi/v1/setTenantEnabled', { tenant: 'acme', enabled: true });
    await waitUntil(() => events.some((e) => e.type === 'changed' && e.status.tenants[0]!.connection === 'connected'), 10_000, 'connected event');
    req.destroy();
  });

  it('writes diagnostics as a 0600 file holding no secrets', async () => {
    const { status, json } = await call(socketPath, 'POST', '/localapi/v1/exportDiagnostics', {});
    expect(status).toBe(200);
    expect((await stat(String(json.path))).mode & 0o777).toBe(0o600);
  });

  it.skipIf(!isRoot)('lets another user read status but not change anything (peer credentials)', async () => {
    const asNobody = (path: string, body: string): Promise<string> =>
      run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'curl', '-sS', '--unix-socket', socketPath, '-X', 'POST', '-H', 'content-type: application/json', '-d', body, `http://agent${path}`]).then((r) => r.stdout);
    const status = JSON.parse(await asNobody('/localapi/v1/status', '{}')) as { tenants: unknown[] };
    expect(status.tenants).toHaveLength(1);
    const refused = JSON.parse(await asNobody('/localapi/v1/setTenantEnabled', '{"tenant":"acme","enabled":false}')) as { code: string };
    expect(refused.code).toBe('forbidden');
    expect(h.agent.tenants[0]!.enabled).toBe(true);
  });
});
