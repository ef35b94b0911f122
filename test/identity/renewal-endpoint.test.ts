// POST /v1/renew on the enrollment service: authenticated by the TLS client certificate being
// renewed. The service asks every client for a certificate but requires none, so enrollment
// proper still works without one; /v1/renew checks the verdict itself.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewalSchedule } from '../../src/agent/identity/renewal.js';
import { enrollWithToken } from '../../src/agent/identity/token-enroll.js';
import { createTenantPki, issueFromCsr, type CertificateAuthority } from '../../src/edge/ca/index.js';
import { ENROLL_PATHS, EnrollError, postEnroll } from '../../src/protocol/enroll-api.js';
import { createCsr, generateKeyPair, identityFromCertificate, type Identity, type KeyPair } from '../../src/protocol/pki.js';
import type { TlsIdentity } from '../../src/protocol/tls.js';
import { FINGERPRINT, Harness } from '../helpers/harness.js';

const DAY_MS = 86_400_000;
const alice: Identity = { kind: 'client', tenant: 'acme', user: 'alice@acme.test', device: 'dev-renew', fingerprint: FINGERPRINT };

describe('POST /v1/renew', () => {
  let h: Harness;
  let clientCa: CertificateAuthority;

  beforeAll(async () => {
    h = await new Harness({ servers: {}, segments: [] }).start();
    clientCa = h.cloud.tenants.get('acme')!.pki.client;
  });

  afterAll(async () => {
    await h?.stop();
  });

  async function certify(ca: CertificateAuthority, identity: Identity, window: { validityDays?: number; notBefore?: Date } = {}): Promise<TlsIdentity & { keys: KeyPair }> {
    const keys = await generateKeyPair();
    const cert = await issueFromCsr(ca, await createCsr({ keys, subject: { commonName: 'd' } }), { identity, validityDays: window.validityDays ?? 30, notBefore: window.notBefore });
    return { keys, keyPem: keys.privateKeyPem, certPem: cert.chainPem };
  }

  async function renew(identity: TlsIdentity | undefined, body: { fingerprint?: string; csr?: string } = {}): Promise<{ status: number; message: string; chain?: string }> {
    const csr = body.csr ?? (await createCsr({ keys: await generateKeyPair(), subject: { commonName: 'd' } }));
    try {
      const res = await postEnroll(h.cloud.enroll, ENROLL_PATHS.renew, { fingerprint: body.fingerprint ?? FINGERPRINT, csr }, h.cloud.caPem, 'localhost', identity);
      return { status: 200, message: '', chain: res.certChainPem };
    } catch (err) {
      if (err instanceof EnrollError) return { status: err.status, message: err.message };
      throw err;
    }
  }

  it('certifies a new key for the same identity, with a full lifetime', async () => {
    const current = await certify(clientCa, alice, { validityDays: 1 });
    const r = await renew(current);
    expect(r.status).toBe(200);
    expect(identityFromCertificate(r.chain!)).toEqual(alice);
    const leaf = new X509Certificate(r.chain!);
    expect(leaf.serialNumber).not.toBe(new X509Certificate(current.certPem).serialNumber);
    expect(Date.parse(leaf.validTo) - Date.now()).toBeGreaterThan(300 * DAY_MS); // tenant default: 365 days
  });

  it('refuses a caller without a client certificate (401), while enrollment needs none', async () => {
    const r = await renew(undefined);
    expect(r.status).toBe(401);
    expect(r.message).toContain('renewal needs a valid agent certificate');
    const enrolled = await enrollWithToken({ tenant: 'acme', token: h.token, device: 'no-cert-needed', fingerprint: FINGERPRINT, enroll: h.cloud.enroll, serverName: 'localhost', caPem: h.cloud.caPem });
    expect(identityFromCertificate(enrolled.certPem)).toMatchObject({ device: 'no-cert-needed' });
  });

  it('refuses an expired certificate: the agent must enroll again', async () => {
    const expired = await certify(clientCa, alice, { validityDays: 1, notBefore: new Date(Date.now() - 3 * DAY_MS) });
    const r = await renew(expired);
    expect(r.status).toBe(401);
    expect(r.message).toContain('CERT_HAS_EXPIRED');
  });

  it("refuses a certificate from a CA that is not this tenant's", async () => {
    const foreign = await createTenantPki('acme');
    const r = await renew(await certify(foreign.client, alice));
    expect(r.status).toBe(401);
  });

  it('refuses a revoked certificate (403)', async () => {
    const current = await certify(clientCa, alice);
    await h.cloud.revoke('acme', new X509Certificate(current.certPem).serialNumber);
    const r = await renew(current);
    expect(r.status).toBe(403);
    expect(r.message).toMatch(/certificate [0-9a-f]+ of tenant acme is revoked/);
  });

  it('refuses a fingerprint other than the certified one: a copied key cannot renew itself elsewhere', async () => {
    const r = await renew(await certify(clientCa, alice), { fingerprint: 'e'.repeat(64) === FINGERPRINT ? 'd'.repeat(64) : 'e'.repeat(64) });
    expect(r.status).toBe(403);
    expect(r.message).toContain('fingerprint mismatch');
  });

  it('refuses to re-certify the current key: renewal rotates keys', async () => {
    const current = await certify(clientCa, alice);
    const r = await renew(current, { csr: await createCsr({ keys: current.keys, subject: { commonName: 'd' } }) });
    expect(r.status).toBe(400);
    expect(r.message).toContain('newly generated key');
  });

  it("refuses a connector's certificate", async () => {
    const dir = join(h.dataDir, 'conn-1');
    const connector = { keyPem: await readFile(join(dir, 'connector.key.pem'), 'utf8'), certPem: await readFile(join(dir, 'connector.chain.pem'), 'utf8') };
    const r = await renew(connector);
    expect(r.status).toBe(403);
    expect(r.message).toContain('only agent certificates');
  });
});

describe('renewal schedule', () => {
  it('is due in the last third of the lifetime by default, and the fraction is configurable', async () => {
    const pki = await createTenantPki('acme');
    const keys = await generateKeyPair();
    const start = Date.now();
    const cert = await issueFromCsr(pki.client, await createCsr({ keys, subject: { commonName: 'd' } }), { identity: alice, validityDays: 30, notBefore: new Date(start) });
    const leaf = new X509Certificate(cert.certPem);
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    const life = to - from;
    expect(renewalSchedule(cert.chainPem, from + life * 0.6).due).toBe(false);
    expect(renewalSchedule(cert.chainPem, from + life * 0.7).due).toBe(true);
    expect(renewalSchedule(cert.chainPem, from + life * 0.7, 0.25).due).toBe(false);
    expect(renewalSchedule(cert.chainPem, from + life * 0.8, 0.25).due).toBe(true);
    expect(renewalSchedule(cert.chainPem, from).notAfter.getTime()).toBe(to);
    expect(() => renewalSchedule(cert.chainPem, from, 1)).toThrow(RangeError);
  });
});
