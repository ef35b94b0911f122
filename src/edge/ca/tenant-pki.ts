// The reference cloud's certificate authorities: per-tenant root with client and connector
// sub-CAs (leaves only ever certify keys generated on the enrolling device, via CSR), plus the
// cloud's own infrastructure root for edge server certificates.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { isIP } from 'node:net';
import { PkiError, generateKeyPair, identityToUri, type Identity, type IdentityKind } from '../../protocol/pki.js';
import {
  CLOCK_SKEW_MS,
  caExtensions,
  createRootCa,
  issued,
  signWith,
  toAuthority,
  validityWindow,
  yearsFrom,
  type CaRole,
  type CertificateAuthority,
  type IssuedCertificate,
} from './authority.js';

export {
  CLOCK_SKEW_MS,
  certificateAuthorityFromPem,
  chainPem,
  normalizeSerial,
  type CaRole,
  type CertificateAuthority,
  type IssuedCertificate,
} from './authority.js';

export interface TenantPki {
  readonly tenantId: string;
  readonly root: CertificateAuthority;
  readonly client: CertificateAuthority;
  readonly connector: CertificateAuthority;
}

/** A certificate whose key the CA side generated: only for the edge's own server identity. */
export interface ServerCredential extends IssuedCertificate {
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

const SUB_CA_YEARS = 5;
const SERVER_CERT_DAYS = 365;
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
/** Bounds the parser's work on an untrusted enrollment payload. */
const MAX_CSR_PEM_LENGTH = 16_384;

/** Which identity kind each CA role may certify through issueFromCsr. */
const ROLE_ISSUES: Record<CaRole, IdentityKind | undefined> = {
  'tenant-root': undefined,
  client: 'client',
  connector: 'connector',
  infra: 'edge',
};

function validateTenantId(tenantId: string): void {
  // eslint-disable-next-line no-control-regex
  if (tenantId.length === 0 || tenantId.length > 128 || /[\u0000-\u001f\u007f]/.test(tenantId)) {
    throw new PkiError('bad-identity', `invalid tenant id ${JSON.stringify(tenantId)}`);
  }
}

async function createSubCa(root: CertificateAuthority, role: 'client' | 'connector'): Promise<CertificateAuthority> {
  const tenantId = root.tenantId ?? '';
  const keys = await generateKeyPair();
  const now = Date.now();
  const certificate = await signWith(root, {
    publicKey: keys.publicKey,
    subject: [{ O: [tenantId] }, { OU: ['zcc tenant PKI'] }, { CN: [`zcc tenant ${tenantId} ${role} CA`] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: yearsFrom(new Date(now), SUB_CA_YEARS),
    extensions: caExtensions(0),
  });
  return toAuthority(role, tenantId, certificate, keys.privateKeyPem, keys.privateKey);
}

export async function createTenantPki(tenantId: string): Promise<TenantPki> {
  validateTenantId(tenantId);
  const root = await createRootCa(
    'tenant-root',
    tenantId,
    [{ O: [tenantId] }, { OU: ['zcc tenant PKI'] }, { CN: [`zcc tenant ${tenantId} root CA`] }],
    1,
  );
  const [client, connector] = await Promise.all([createSubCa(root, 'client'), createSubCa(root, 'connector')]);
  return { tenantId, root, client, connector };
}

export async function createInfraCa(): Promise<CertificateAuthority> {
  return createRootCa('infra', undefined, [{ O: ['zcc cloud'] }, { CN: ['zcc infrastructure root CA'] }], 0);
}

function subjectFor(identity: Identity): x509.JsonName {
  switch (identity.kind) {
    case 'client':
      return [{ O: [identity.tenant] }, { OU: ['client'] }, { CN: [identity.user] }];
    case 'connector':
      return [{ O: [identity.tenant] }, { OU: ['connector'] }, { CN: [identity.connector] }];
    case 'edge':
      return [{ O: ['zcc cloud'] }, { OU: ['edge'] }, { CN: [identity.name] }];
  }
}

function assertMayIssue(ca: CertificateAuthority, identity: Identity): void {
  const allowed = ROLE_ISSUES[ca.role];
  if (allowed !== identity.kind) {
    throw new PkiError('wrong-ca', `a ${ca.role} CA does not issue ${identity.kind} certificates`);
  }
  // A tenant's CA must never vouch for another tenant's principals.
  if (identity.kind !== 'edge' && identity.tenant !== ca.tenantId) {
    throw new PkiError('wrong-ca', `CA of tenant ${ca.tenantId} cannot issue for tenant ${identity.tenant}`);
  }
}

async function verifiedCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (csrPem.length > MAX_CSR_PEM_LENGTH) throw new PkiError('bad-csr', 'CSR is too large');
  let csr: x509.Pkcs10CertificateRequest;
  let valid: boolean;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
    valid = await csr.verify();
  } catch (cause) {
    throw new PkiError('bad-csr', 'cannot parse or verify CSR', { cause });
  }
  if (!valid) throw new PkiError('bad-csr', 'CSR signature does not verify (no proof of key possession)');
  const algorithm = csr.publicKey.algorithm as { name?: unknown; namedCurve?: unknown };
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw new PkiError('bad-csr', 'CSR key must be ECDSA P-256');
  }
  return csr;
}

export interface IssueFromCsrOptions {
  /** The enrollment decision: certified regardless of what the CSR claims. */
  identity: Identity;
  validityDays: number;
  /** Start of validity (default now); a past date with a short validity yields an expired cert. */
  notBefore?: Date;
}

/**
 * Certifies the CSR's key for `identity`. Only the key (after checking proof of possession)
 * is taken from the CSR; its subject and requested extensions are ignored.
 */
export async function issueFromCsr(
  ca: CertificateAuthority,
  csrPem: string,
  options: IssueFromCsrOptions,
): Promise<IssuedCertificate> {
  assertMayIssue(ca, options.identity);
  const uri = identityToUri(options.identity);
  const window = validityWindow(options.validityDays, options.notBefore);
  const csr = await verifiedCsr(csrPem);
  const cert = await signWith(ca, {
    publicKey: csr.publicKey,
    subject: subjectFor(options.identity),
    ...window,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]),
    ],
  });
  return issued(ca, cert);
}

export interface ServerCertificateOptions {
  /** Edge name, certified as `zcc://edge/<name>` next to the DNS and IP names. */
  name: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  validityDays?: number;
}

export async function issueServerCertificate(
  ca: CertificateAuthority,
  options: ServerCertificateOptions,
): Promise<ServerCredential> {
  const identity: Identity = { kind: 'edge', name: options.name };
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  if (dnsNames.length + ipAddresses.length === 0) {
    throw new PkiError('bad-identity', 'a server certificate needs at least one DNS name or IP address');
  }
  // Checked here because the encoder would otherwise certify a name no client can match.
  for (const dns of dnsNames) {
    if (dns.length > 253 || !DNS_NAME.test(dns)) throw new PkiError('bad-identity', `invalid DNS name ${JSON.stringify(dns)}`);
  }
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new PkiError('bad-identity', `invalid IP address ${JSON.stringify(ip)}`);
  }
  const sans: x509.JsonGeneralName[] = [
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    { type: 'url', value: identityToUri(identity) },
  ];
  const window = validityWindow(options.validityDays ?? SERVER_CERT_DAYS);
  const keys = await generateKeyPair();
  const cert = await signWith(ca, {
    publicKey: keys.publicKey,
    subject: subjectFor(identity),
    ...window,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(sans),
    ],
  });
  return { ...issued(ca, cert), keyPem: keys.privateKeyPem };
}
