import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollWithToken } from '../../src/agent/identity/token-enroll.js';
import { CloudConfig, TenantConfig } from '../../src/edge/cloud-config.js';
import { startCloud, type RunningCloud } from '../../src/edge/cloud.js';
import { SnapshotAuthStore } from '../../src/edge/pse/auth-snapshot.js';
import { DrBundle } from '../../src/edge/pse/dr-bundle.js';
import { drSubset } from '../../src/edge/pse/dr-export.js';
import { FINGERPRINT } from '../helpers/harness.js';
import { LogCapture, waitUntil } from '../helpers/log-capture.js';

const seg = (id: string, drEnabled: boolean, groups: string[]) => ({ id, name: id, domains: [`${id}.acme.test`], tcpPorts: [{ from: 7, to: 7 }], drEnabled, connectorGroups: groups });

describe('DR subset of a tenant', () => {
  it('keeps DR segments only, served by DR-designated groups when there are any', () => {
    const t = TenantConfig.parse({
      id: 'acme',
      name: 'Acme',
      segments: [seg('a', true, ['dc', 'cloud-only']), seg('b', false, ['dc']), seg('c', true, ['cloud-only'])],
      connectorGroups: [{ id: 'dc', drEnabled: true }, { id: 'cloud-only' }],
    });
    const { segments, warnings } = drSubset(t);
    expect(segments.map((s) => [s.id, s.connectorGroups])).toEqual([['a', ['dc']]]);
    expect(warnings).toEqual(['tenant acme: DR segment c has no DR-designated connector group; left out of the DR bundle']);
  });

  it('without DR-designated groups, DR segments keep their groups', () => {
    const t = TenantConfig.parse({ id: 'acme', name: 'Acme', segments: [seg('a', true, ['dc'])], connectorGroups: [{ id: 'dc' }] });
    expect(drSubset(t).segments.map((s) => s.connectorGroups)).toEqual([['dc']]);
  });

  it('the auth snapshot leaves out sessions an administrator ended', () => {
    const auth = new SnapshotAuthStore();
    auth.set('acme', 'd1', { user: 'alice', groups: ['staff'], expiresAt: 1 });
    auth.set('acme', 'd2', { user: 'bob', groups: [], expiresAt: Date.now() + 1000 });
    auth.expire('acme', 'd2');
    expect(auth.assertions('acme')).toEqual([{ device: 'd1', user: 'alice', groups: ['staff'], expiresAt: 1 }]);
    expect(auth.assertions('other')).toEqual([]);
  });
});

describe('DR export from a running cloud', () => {
  const logs = new LogCapture();
  const provisioningKey = randomBytes(24).toString('base64url');
  const token = randomBytes(24).toString('base64url');
  let dir: string;
  let cloud: RunningCloud;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zcc-dr-export-'));
    cloud = await startCloud(
      CloudConfig.parse({
        dataDir: join(dir, 'cloud'),
        listen: {},
        tenants: [
          {
            id: 'acme',
            name: 'Acme',
            segments: [seg('a', true, ['dc']), seg('b', false, ['dc'])],
            connectorGroups: [{ id: 'dc', provisioningKeys: [provisioningKey], drEnabled: true }],
            enrollmentTokens: [{ token, user: 'alice@acme.test', groups: ['staff'] }],
          },
        ],
        dr: { exportDir: join(dir, 'export'), exportIntervalSeconds: 1, pseName: 'pse-dc1' },
      }),
      logs.log,
    );
    await enrollWithToken({ tenant: 'acme', token, device: 'laptop-1', fingerprint: FINGERPRINT, enroll: cloud.enroll, serverName: 'localhost', caPem: cloud.caPem });
  });
  afterAll(async () => {
    await cloud?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes the bundle and the PSE key periodically; the bundle holds no secret', async () => {
    const bundleFile = join(dir, 'export', 'dr-bundle.json');
    // The first export ran at start, before the enrollment; a later one has the assertion.
    const bundle = await waitUntil(
      async () => {
        const text = await readFile(bundleFile, 'utf8').catch(() => undefined);
        const b = text === undefined ? undefined : DrBundle.parse(JSON.parse(text));
        return b?.tenants[0]!.assertions.length ? b : undefined;
      },
      10_000,
      'a DR bundle with the assertion',
    );
    expect(bundle.pse.name).toBe('pse-dc1');
    expect(bundle.tenants[0]).toMatchObject({ id: 'acme', segments: [{ id: 'a' }], assertions: [{ device: 'laptop-1', user: 'alice@acme.test', groups: ['staff'] }] });
    expect(bundle.cloudCaPem).toBe(cloud.caPem);
    const text = await readFile(bundleFile, 'utf8');
    for (const secret of [provisioningKey, token, 'PRIVATE KEY']) expect(text).not.toContain(secret);
    expect((await stat(join(dir, 'export', 'pse.key.pem'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'export', 'pse.key.pem'), 'utf8')).toContain('PRIVATE KEY');
  });
});
