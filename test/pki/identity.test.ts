// Must precede @peculiar/x509 (tsyringe needs the Reflect polyfill at load time).
import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  PkiError,
  certificateFingerprint,
  createCsr,
  generateKeyPair,
  identityFromCertificate,
  identityFromUri,
  identityToUri,
  identityUris,
  type Identity,
} from '../../src/protocol/pki.js';
import { createInfraCa, createTenantPki, issueServerCertificate } from '../../src/edge/ca/index.js';
import { clientIdentity, enroll } from './fixtures.js';

function pkiError(fn: () => unknown): PkiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PkiError) return error;
    throw error;
  }
  throw new Error('expected a PkiError');
}

describe('identity URIs', () => {
  it('encodes each kind with percent-encoded components', () => {
    const fp = 'a'.repeat(64);
    expect(identityToUri({ kind: 'client', tenant: 'demo', user: 'alice@demo.internal', device: 'dev-1234', fingerprint: fp })).toBe(
      `zcc://client/demo/alice%40demo.internal/dev-1234/${fp}`,
    );
    expect(identityToUri({ kind: 'connector', tenant: 'demo', connector: 'conn-1', group: 'group-a' })).toBe(
      'zcc://connector/demo/conn-1/group-a',
    );
    expect(identityToUri({ kind: 'edge', name: 'edge-1' })).toBe('zcc://edge/edge-1');
    // A "/" inside a component must not shift the fields after it.
    expect(identityToUri({ kind: 'connector', tenant: 'a/b', connector: 'c d', group: 'é' })).toBe(
      'zcc://connector/a%2Fb/c%20d/%C3%A9',
    );
  });

  it('parses back what it encodes', () => {
    const ids: Identity[] = [
      clientIdentity('demo'),
      { kind: 'connector', tenant: 'a/b', connector: '%41', group: 'x y' },
      { kind: 'edge', name: 'edge.zcc.test' },
    ];
    for (const id of ids) expect(identityFromUri(identityToUri(id))).toEqual(id);
  });

  it('round-trips arbitrary component strings', () => {
    const component = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(component, component, component, component, (tenant, user, device, fingerprint) => {
        const id: Identity = { kind: 'client', tenant, user, device, fingerprint };
        const uri = identityToUri(id);
        expect(uri.split('/')).toHaveLength(7);
        expect(identityFromUri(uri)).toEqual(id);
      }),
    );
  });

  it.each([
    ['wrong scheme', 'https://client/demo/a/b/c'],
    ['no authority slashes', 'zcc:client/demo/a/b/c'],
    ['unknown kind', 'zcc://admin/demo/root'],
    ['too few components', 'zcc://client/demo/alice/dev'],
    ['too many components', 'zcc://connector/demo/c/g/extra'],
    ['empty component', 'zcc://connector/demo//g'],
    ['trailing slash', 'zcc://edge/e1/'],
    ['bad percent escape', 'zcc://edge/%zz'],
    ['percent-encoded invalid UTF-8', 'zcc://edge/%ff'],
    ['non-canonical escape', 'zcc://edge/%61'],
    ['lower-case hex escape', 'zcc://edge/a%2fb'],
    ['unescaped reserved character', 'zcc://client/demo/alice@demo.internal/d/f'],
    ['empty string', ''],
  ])('rejects a malformed URI: %s', (_why, uri) => {
    const error = pkiError(() => identityFromUri(uri));
    expect(error.code).toBe('bad-identity-uri');
    expect(error.message).toContain('malformed identity URI');
  });

  it('rejects identities that cannot be encoded', () => {
    expect(pkiError(() => identityToUri({ kind: 'edge', name: '' })).code).toBe('bad-identity');
    expect(pkiError(() => identityToUri({ kind: 'edge', name: 'x'.repeat(257) })).code).toBe('bad-identity');
    expect(pkiError(() => identityToUri({ kind: 'edge', name: '\ud800' })).code).toBe('bad-identity');
    const bogus = { kind: 'root', name: 'x' } as unknown as Identity;
    expect(pkiError(() => identityToUri(bogus)).code).toBe('bad-identity');
  });
});

describe('keys and CSRs', () => {
  it('generates a P-256 key exported as PKCS#8 PEM', async () => {
    const keys = await generateKeyPair();
    expect(keys.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END PRIVATE KEY-----\n$/);
    expect(keys.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(keys.privateKey.type).toBe('private');
  });

  it('creates a signed CSR carrying the identity URI and an unforgeable subject', async () => {
    const keys = await generateKeyPair();
    const identity = clientIdentity('demo');
    const pem = await createCsr({ keys, subject: { commonName: 'alice, O=evil' }, identity });
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    const csr = new x509.Pkcs10CertificateRequest(pem);
    expect(await csr.verify()).toBe(true);
    // The comma is escaped inside a single CN, not parsed as a second RDN.
    expect(csr.subjectName.getField('CN')).toEqual(['alice, O=evil']);
    expect(csr.subjectName.getField('O')).toEqual([]);
    expect(identityUris(csr)).toEqual([identityToUri(identity)]);
  });
});

describe('certificates', () => {
  it('reads the identity from a PEM or DER leaf', async () => {
    const pki = await createTenantPki('demo');
    const identity = clientIdentity('demo');
    const leaf = await enroll(pki.client, identity);
    expect(identityFromCertificate(leaf.certPem)).toEqual(identity);
    const der = new x509.X509Certificate(leaf.certPem).rawData;
    expect(identityFromCertificate(der)).toEqual(identity);
    expect(identityFromCertificate(Buffer.from(der))).toEqual(identity);
  });

  it('reads the edge identity of a server certificate next to its DNS and IP names', async () => {
    const server = await issueServerCertificate(await createInfraCa(), {
      name: 'edge-1',
      dnsNames: ['edge.zcc.test'],
      ipAddresses: ['127.0.0.1'],
    });
    expect(identityFromCertificate(server.certPem)).toEqual({ kind: 'edge', name: 'edge-1' });
  });

  it('fails clearly on a certificate without identity and on garbage', async () => {
    const pki = await createTenantPki('demo');
    expect(pkiError(() => identityFromCertificate(pki.root.certPem)).code).toBe('no-identity');
    expect(pkiError(() => identityFromCertificate('not a certificate')).code).toBe('bad-certificate');
    expect(pkiError(() => identityFromCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01]))).code).toBe('bad-certificate');
  });

  it('refuses a certificate carrying two identities', async () => {
    const keys = await generateKeyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=two',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'zcc://edge/a' },
          { type: 'url', value: 'zcc://edge/b' },
        ]),
      ],
    });
    const error = pkiError(() => identityFromCertificate(cert.toString('pem')));
    expect(error.code).toBe('bad-certificate');
    expect(error.message).toContain('2 zcc identity URIs');
  });

  it('fingerprints the DER encoding with SHA-256', async () => {
    const pki = await createTenantPki('demo');
    const der = Buffer.from(new x509.X509Certificate(pki.root.certPem).rawData);
    const expected = createHash('sha256').update(der).digest('hex');
    expect(certificateFingerprint(pki.root.certPem)).toBe(expected);
    expect(certificateFingerprint(der)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
  });
});
