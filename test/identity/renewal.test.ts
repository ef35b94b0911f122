// Certificate lifecycle end to end: a certificate near the end of its life is renewed by the
// agent on its own (new key, same identity, sealed state swapped), the Z-Tunnel keeps working on
// the new one, and once revoked on the cloud side it is refused with a status that says so.
import { X509Certificate } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAgentState, tlsIdentityOf, type AgentState, type TenantRecord } from '../../src/agent/identity/agent-state.js';
import { CertificateRenewer, renewalSchedule, renewTenantCertificate } from '../../src/agent/identity/renewal.js';
import { TunnelClient } from '../../src/agent/tunnel/tunnel-client.js';
import { issueFromCsr } from '../../src/edge/ca/index.js';
import { Backoff } from '../../src/protocol/backoff.js';
import { createCsr, generateKeyPair, identityFromCertificate, identityToUri, type Identity } from '../../src/protocol/pki.js';
import { FINGERPRINT, echoApp, Harness } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';
import { canonicalSerial } from '../../src/protocol/cert-serial.js';

const DAY_MS = 86_400_000;
const DEVICE = 'renewing-laptop';
const serialOf = (r: TenantRecord): string => canonicalSerial(new X509Certificate(r.certChainPem).serialNumber);

describe('client certificate renewal and revocation', () => {
  let echo: TestServer;
  let h: Harness;
  let state: AgentState;
  let client: TunnelClient;
  let renewer: CertificateRenewer;
  let first: TenantRecord;
  let renewed: TenantRecord | undefined;

  beforeAll(async () => {
    echo = await echoServer();
    h = await new Harness(echoApp(echo.port)).start();
    // A certificate with 90 s left of a ~6.5 min life (issuance backdates 5 min for clock skew):
    // well inside its last third, as a year-long one would be after eight months.
    const identity: Identity = { kind: 'client', tenant: 'acme', user: 'alice@acme.test', device: DEVICE, fingerprint: FINGERPRINT };
    const keys = await generateKeyPair();
    const cert = await issueFromCsr(h.cloud.tenants.get('acme')!.pki.client, await createCsr({ keys, subject: { commonName: DEVICE } }), { identity, validityDays: 90_000 / DAY_MS });
    h.cloud.auth.set('acme', DEVICE, { user: identity.user, groups: ['staff'], expiresAt: Date.now() + DAY_MS });
    state = await openAgentState(join(h.dataDir, 'agent-state'), { fingerprint: FINGERPRINT });
    first = await state.writeTenant('acme', {
      tenant: 'acme',
      name: 'Acme',
      edge: h.cloud.tunnel,
      enroll: h.cloud.enroll,
      serverName: 'localhost',
      caPem: h.cloud.caPem,
      keyPem: keys.privateKeyPem,
      certChainPem: cert.chainPem,
      identityUri: identityToUri(identity),
      enrolledAt: new Date().toISOString(),
    });
    client = new TunnelClient({
      tenant: 'acme',
      edge: h.cloud.tunnel,
      serverName: 'localhost',
      caPem: h.cloud.caPem,
      identity: tlsIdentityOf(first),
      log: h.logs.log.child({ proc: 'renewing-agent' }),
      backoff: new Backoff(60_000, 60_000),
    });
    client.start();
    await client.waitConnected();
  });

  afterAll(async () => {
    renewer?.stop();
    client?.stop();
    await h?.stop();
    await echo?.close();
  });

  async function echoThrough(c: TunnelClient, text: string): Promise<string> {
    const stream = await c.dial({ proto: 'tcp', host: 'echo.acme.test', port: 7 });
    stream.end(text);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  it('renews a certificate in its last third by itself: new key, same identity, sealed state swapped', async () => {
    expect(renewalSchedule(first.certChainPem, Date.now()).due).toBe(true);
    renewer = new CertificateRenewer({
      state,
      tenant: 'acme',
      log: h.logs.log.child({ proc: 'renewing-agent' }),
      checkEveryMs: 100,
      fingerprint: FINGERPRINT,
      onRenewed: (r) => {
        renewed = r;
        client.setIdentity(tlsIdentityOf(r));
      },
    });
    renewer.start();
    await waitUntil(() => renewed && serialOf(renewed) !== serialOf(first), 15_000, 'the certificate serial to change');
    const onDisk = await state.readTenant('acme');
    expect(onDisk).toEqual(renewed);
    expect(onDisk!.keyPem).not.toBe(first.keyPem);
    expect(identityToUri(identityFromCertificate(onDisk!.certChainPem))).toBe(first.identityUri);
    expect(new X509Certificate(onDisk!.certChainPem).publicKey.equals(new X509Certificate(first.certChainPem).publicKey)).toBe(false);
    expect(renewalSchedule(onDisk!.certChainPem, Date.now()).due).toBe(false);
    expect(await renewer.check()).toBe('not-due');
    expect(onDisk!.renewedAt).toBeDefined();
    expect(onDisk!.enrolledAt).toBe(first.enrolledAt);

    const line = await h.logs.waitFor((l) => l.msg === 'agent certificate renewed');
    expect(line).toMatchObject({ tenant: 'acme', device: DEVICE, oldSerial: serialOf(first), serial: serialOf(onDisk!) });
    for (const f of await readdir(state.dir)) expect(((await stat(join(state.dir, f))).mode & 0o777).toString(8), f).toBe('600');
    expect(h.logs.raw.join('\n')).not.toContain('PRIVATE KEY');
  });

  it('keeps the Z-Tunnel working: the current one untouched, the next one on the new certificate', async () => {
    expect(client.status.state).toBe('connected');
    expect(await echoThrough(client, 'before reconnect')).toBe('before reconnect');
    const mark = h.logs.lines.length;
    client.stop();
    client.start();
    await client.waitConnected();
    const up = await h.logs.waitFor((l) => h.logs.lines.indexOf(l) >= mark && l.component === 'edge' && l.msg === 'Z-Tunnel up' && l.peer === `agent alice@acme.test@${DEVICE}`);
    expect(up.serial).toBe(serialOf(renewed!));
    expect(await echoThrough(client, 'on the renewed certificate')).toBe('on the renewed certificate');
  });

  it('refuses the certificate once revoked on the cloud side, with a status that says it was revoked', async () => {
    const serial = serialOf(renewed!);
    await h.cloud.revoke('acme', serial);
    const mark = h.logs.lines.length;
    client.stop();
    client.start();
    const status = await waitUntil(() => client.status.state === 'error' && client.status, 10_000, 'the revoked agent to be refused');
    expect(status.error).toBe(`refused by the edge: revoked: certificate ${serial} of tenant acme is revoked`);
    const line = await h.logs.waitFor((l) => h.logs.lines.indexOf(l) >= mark && l.component === 'edge' && l.code === 'revoked');
    expect(line.msg).toBe(`Z-Tunnel refused: certificate ${serial} of tenant acme is revoked`);
    // Nor can a revoked certificate renew itself back into service.
    await expect(renewTenantCertificate(state, 'acme', FINGERPRINT)).rejects.toThrow(/\(403\).*revoked/);
    expect(serialOf((await state.readTenant('acme'))!)).toBe(serial);
  });
});
