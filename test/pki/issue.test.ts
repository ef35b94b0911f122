// Must precede @peculiar/x509 (tsyringe needs the Reflect polyfill at load time).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalSerial } from '../../src/protocol/cert-serial.js';
import { PkiError, createCsr, generateKeyPair, identityFromCertificate, identityUris } from '../../src/protocol/pki.js';
import {
  CLOCK_SKEW_MS,
  chainPem,
  createInfraCa,
  createTenantPki,
  issueFromCsr,
  issueServerCertificate,
  normalizeSerial,
  type CertificateAuthority,
  type TenantPki,
} from '../../src/edge/ca/index.js';
import { clientIdentity, connectorIdentity, enroll, execFileAsync, opensslVerify, withTempDir } from './fixtures.js';

const DAY = 86_400_000;

async function rejection(promise: Promise<unknown>): Promise<PkiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (error instanceof PkiError) return error;
  throw new Error(`expected a PkiError, got ${String(error)}`);
}

function basicConstraints(cert: x509.X509Certificate): x509.BasicConstraintsExtension | null {
  return cert.getExtension(x509.BasicConstraintsExtension);
}

let demo: TenantPki;
let other: TenantPki;
let infra: CertificateAuthority;

beforeAll(async () => {
  [demo, other, infra] = await Promise.all([createTenantPki('demo'), createTenantPki('other'), createInfraCa()]);
});

describe('tenant PKI', () => {
  it('has a 10-year self-signed root with pathLen 1 and two 5-year sub-CAs with pathLen 0', async () => {
    const root = demo.root.certificate;
    expect(root.subject).toContain('demo');
    expect(await root.isSelfSigned()).toBe(true);
    expect(basicConstraints(root)).toMatchObject({ ca: true, pathLength: 1, critical: true });
    const rootUsage = root.getExtension(x509.KeyUsagesExtension);
    expect(rootUsage?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(rootUsage?.critical).toBe(true);
    const years = (c: x509.X509Certificate): number => (c.notAfter.getTime() - c.notBefore.getTime()) / (365.25 * DAY);
    expect(years(root)).toBeCloseTo(10, 1);

    for (const [sub, role] of [
      [demo.client, 'client'],
      [demo.connector, 'connector'],
    ] as const) {
      const cert = sub.certificate;
      expect(sub.role).toBe(role);
      expect(sub.tenantId).toBe('demo');
      expect(cert.subject).toContain(`demo ${role} CA`);
      expect(cert.issuer).toBe(root.subject);
      expect(await cert.verify({ publicKey: root.publicKey, signatureOnly: true })).toBe(true);
      expect(basicConstraints(cert)).toMatchObject({ ca: true, pathLength: 0 });
      expect(years(cert)).toBeCloseTo(5, 1);
    }
    expect(demo.root.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('gives every tenant and the infrastructure independent keys', () => {
    const spki = (ca: CertificateAuthority): string => Buffer.from(ca.certificate.publicKey.rawData).toString('hex');
    const keys = new Set([demo.root, demo.client, demo.connector, other.root, infra].map(spki));
    expect(keys.size).toBe(5);
  });
});

describe('issueFromCsr', () => {
  it('certifies the caller-given identity, not the one the CSR claims', async () => {
    const granted = clientIdentity('demo', 'alice@demo.internal');
    const claimed = clientIdentity('demo', 'admin@demo.internal');
    const leaf = await enroll(demo.client, granted, { claimed });
    const cert = new x509.X509Certificate(leaf.certPem);
    expect(identityFromCertificate(leaf.certPem)).toEqual(granted);
    expect(identityUris(cert)).toHaveLength(1);
    expect(cert.subject).not.toContain('device');
    expect(cert.subjectName.getField('CN')).toEqual(['alice@demo.internal']);
    expect(cert.issuer).toBe(demo.client.certificate.subject);
    expect(basicConstraints(cert)).toMatchObject({ ca: false, critical: true });
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
  });

  it('backdates notBefore for clock skew and uses random 128-bit serials', async () => {
    const before = Date.now();
    const leaves = await Promise.all([1, 2, 3].map(() => enroll(demo.client, clientIdentity('demo'), { validityDays: 7 })));
    for (const leaf of leaves) {
      // Certificate times have one-second resolution.
      expect(before - leaf.notBefore.getTime()).toBeGreaterThanOrEqual(CLOCK_SKEW_MS - 1000);
      expect(before - leaf.notBefore.getTime()).toBeLessThan(CLOCK_SKEW_MS + 5000);
      expect(leaf.notAfter.getTime() - before).toBeGreaterThan(7 * DAY - 5000);
      expect(leaf.notAfter.getTime() - before).toBeLessThan(7 * DAY + 5000);
      expect(leaf.serialNumber).toMatch(/^[1-9a-f][0-9a-f]{0,31}$/);
      expect(leaf.serialNumber.length).toBeGreaterThanOrEqual(24);
    }
    expect(new Set(leaves.map((l) => l.serialNumber)).size).toBe(3);
  });

  it('prints a serial one way: the issuance record, the edge and the agent agree, leading zeros or not', () => {
    expect(canonicalSerial('0B:8F:32:90')).toBe('b8f3290');
    expect(canonicalSerial('0B8F3290262085A40B131510546F5905')).toBe('b8f3290262085a40b131510546f5905');
    expect(canonicalSerial('00')).toBe('0');
    // What the edge reads off a presented certificate (Node keeps leading zeros) is what the CA recorded.
    expect(normalizeSerial('0B8F3290262085A40B131510546F5905')).toBe(canonicalSerial('0b8f3290262085a40b131510546f5905'));
  });

  it('can issue an already expired certificate for tests', async () => {
    const leaf = await enroll(demo.client, clientIdentity('demo'), { notBefore: new Date(Date.now() - 10 * DAY), validityDays: 1 });
    expect(leaf.notAfter.getTime()).toBeLessThan(Date.now() - 8 * DAY);
  });

  it('never certifies beyond the issuing CA', async () => {
    const leaf = await enroll(demo.connector, connectorIdentity('demo'), { validityDays: 100 * 365 });
    expect(leaf.notAfter.getTime()).toBe(demo.connector.certificate.notAfter.getTime());
  });

  it('rejects a CSR whose signature does not verify', async () => {
    const keys = await generateKeyPair();
    const pem = await createCsr({ keys, subject: { commonName: 'mallory' }, identity: clientIdentity('demo') });
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(pem).rawData);
    // Same length, still well-formed DER: only the signed content changes.
    const at = der.indexOf(Buffer.from('mallory'));
    der.write('mallorz', at);
    const tampered = new x509.Pkcs10CertificateRequest(der).toString('pem');
    const error = await rejection(issueFromCsr(demo.client, tampered, { identity: clientIdentity('demo'), validityDays: 1 }));
    expect(error.code).toBe('bad-csr');
    expect(error.message).toMatch(/signature/);
  });

  it('rejects garbage, oversized and non-P-256 CSRs', async () => {
    const opts = { identity: clientIdentity('demo'), validityDays: 1 };
    expect((await rejection(issueFromCsr(demo.client, 'hello', opts))).code).toBe('bad-csr');
    expect((await rejection(issueFromCsr(demo.client, 'A'.repeat(100_000), opts))).code).toBe('bad-csr');
    const p384 = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=p384',
      keys: p384,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
    });
    const error = await rejection(issueFromCsr(demo.client, csr.toString('pem'), opts));
    expect(error.code).toBe('bad-csr');
    expect(error.message).toContain('P-256');
  });

  it('lets each CA certify only its own kind of principal of its own tenant', async () => {
    const keys = await generateKeyPair();
    const csr = await createCsr({ keys, subject: { commonName: 'x' }, identity: clientIdentity('demo') });
    const cases: Array<[CertificateAuthority, Parameters<typeof issueFromCsr>[2]['identity']]> = [
      [demo.root, clientIdentity('demo')],
      [demo.connector, clientIdentity('demo')],
      [demo.client, connectorIdentity('demo')],
      [demo.client, clientIdentity('other')],
      [other.connector, connectorIdentity('demo')],
      [infra, clientIdentity('demo')],
      [demo.client, { kind: 'edge', name: 'edge-1' }],
    ];
    for (const [ca, identity] of cases) {
      const error = await rejection(issueFromCsr(ca, csr, { identity, validityDays: 1 }));
      expect(error.code).toBe('wrong-ca');
    }
    const bad = await rejection(issueFromCsr(demo.client, csr, { identity: clientIdentity('demo'), validityDays: 0 }));
    expect(bad.code).toBe('bad-validity');
  });

  it('presents the leaf with its intermediate', async () => {
    const leaf = await enroll(demo.client, clientIdentity('demo'));
    expect(leaf.chainPem).toBe(chainPem(leaf.certPem, demo.client));
    expect(leaf.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(chainPem(demo.client, demo.root)).toBe(demo.client.certPem + demo.root.certPem);
  });
});

describe('issueServerCertificate', () => {
  it('issues a one-year serverAuth certificate with DNS, IP and edge names and its own key', async () => {
    const server = await issueServerCertificate(infra, { name: 'edge-1', dnsNames: ['edge.zcc.test'], ipAddresses: ['127.0.0.1', '::1'] });
    const cert = new x509.X509Certificate(server.certPem);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.toJSON()).toEqual([
      { type: 'dns', value: 'edge.zcc.test' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
      { type: 'url', value: 'zcc://edge/edge-1' },
    ]);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect((server.notAfter.getTime() - Date.now()) / DAY).toBeCloseTo(365, 0);
    expect(server.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // Issued straight from the root: nothing to send besides the leaf.
    expect(server.chainPem).toBe(server.certPem);
    for (const bad of [{}, { ipAddresses: ['not-an-ip'] }, { dnsNames: ['bad name'] }, { dnsNames: ['a..b'] }]) {
      const error = await rejection(issueServerCertificate(infra, { name: 'edge-2', ...bad }));
      expect(error.code).toBe('bad-identity');
    }
  });
});

describe('openssl', () => {
  it('verifies client and connector leaves against the tenant root via the sub-CA', async () => {
    const client = await enroll(demo.client, clientIdentity('demo'));
    const out = await opensslVerify({ root: demo.root.certPem, untrusted: demo.client.certPem, leaf: client.certPem, purpose: 'sslclient' });
    expect(out).toMatch(/: OK/);
    const connector = await enroll(demo.connector, connectorIdentity('demo'));
    await opensslVerify({ root: demo.root.certPem, untrusted: demo.connector.certPem, leaf: connector.certPem, purpose: 'sslclient' });
  });

  it('verifies the edge server certificate against the infrastructure root', async () => {
    const server = await issueServerCertificate(infra, { name: 'edge-1', dnsNames: ['edge.zcc.test'] });
    expect(await opensslVerify({ root: infra.certPem, leaf: server.certPem, purpose: 'sslserver' })).toMatch(/: OK/);
  });

  it('refuses a leaf of another tenant and a client certificate used as a server', async () => {
    const foreign = await enroll(other.client, clientIdentity('other'));
    await expect(
      opensslVerify({ root: demo.root.certPem, untrusted: other.client.certPem, leaf: foreign.certPem, purpose: 'sslclient' }),
    ).rejects.toThrow(/unable to get (local )?issuer certificate/);
    const client = await enroll(demo.client, clientIdentity('demo'));
    await expect(
      opensslVerify({ root: demo.root.certPem, untrusted: demo.client.certPem, leaf: client.certPem, purpose: 'sslserver' }),
    ).rejects.toThrow(/(unsupported|unsuitable) certificate purpose/);
  });

  it('accepts the CSR produced by createCsr', async () => {
    const keys = await generateKeyPair();
    const pem = await createCsr({ keys, subject: { commonName: 'device' }, identity: clientIdentity('demo') });
    await withTempDir(async (dir) => {
      await writeFile(`${dir}/req.pem`, pem);
      const { stdout, stderr } = await execFileAsync('openssl', ['req', '-in', `${dir}/req.pem`, '-noout', '-verify']);
      expect(stdout + stderr).toMatch(/verify OK/i);
    });
  });
});
