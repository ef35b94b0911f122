// Building blocks shared by CA creation, issuance and the CA store; the public surface is
// re-exported from tenant-pki.ts.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPublicKey, randomBytes } from 'node:crypto';
import { PkiError, SIGNING_ALGORITHM, generateKeyPair, importPrivateKey, type CryptoKey } from '../../protocol/pki.js';
import { canonicalSerial } from '../../protocol/cert-serial.js';

/**
 * tenant-root signs only the two sub-CAs; client and connector sign enrolled leaves of their
 * tenant; infra is the cloud's own root for edge certificates, independent of any tenant.
 */
export type CaRole = 'tenant-root' | 'client' | 'connector' | 'infra';

export interface CertificateAuthority {
  readonly role: CaRole;
  /** Undefined only for the infrastructure CA. */
  readonly tenantId: string | undefined;
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  readonly certificate: x509.X509Certificate;
  readonly privateKey: CryptoKey;
}

export interface IssuedCertificate {
  /** The leaf alone. */
  readonly certPem: string;
  /** Leaf followed by its intermediate (if any): what a peer presents as Node `tls` `cert`. */
  readonly chainPem: string;
  /** Lower-case hex without leading zeros, as in the revocation list. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export const DAY_MS = 86_400_000;

/** Backdating absorbs clock skew between the CA and whoever validates the certificate. */
export const CLOCK_SKEW_MS = 5 * 60_000;
export const ROOT_YEARS = 10;

export function yearsFrom(date: Date, years: number): Date {
  const result = new Date(date);
  result.setUTCFullYear(result.getUTCFullYear() + years);
  return result;
}

/** Never certify beyond the issuer's own lifetime: validators would reject the chain anyway. */
function clampToIssuer(notAfter: Date, issuer: x509.X509Certificate): Date {
  return notAfter.getTime() > issuer.notAfter.getTime() ? new Date(issuer.notAfter) : notAfter;
}

function randomSerial(): string {
  // 128 random bits; the library adds a leading zero octet when needed to keep it positive.
  return randomBytes(16).toString('hex');
}

/** The canonical serial form used everywhere in zcc (Node prints upper case, with leading 0s). */
export function normalizeSerial(serial: string): string {
  if (!/^[0-9a-f]+$/i.test(serial.replace(/:/g, ''))) throw new PkiError('bad-certificate', `invalid serial number ${JSON.stringify(serial)}`);
  return canonicalSerial(serial);
}

export function caExtensions(pathLength: number): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
}

export function toAuthority(
  role: CaRole,
  tenantId: string | undefined,
  certificate: x509.X509Certificate,
  keyPem: string,
  privateKey: CryptoKey,
): CertificateAuthority {
  return { role, tenantId, certPem: certificate.toString('pem') + '\n', keyPem, certificate, privateKey };
}

export async function createRootCa(
  role: CaRole,
  tenantId: string | undefined,
  name: x509.JsonName,
  pathLength: number,
): Promise<CertificateAuthority> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: yearsFrom(new Date(now), ROOT_YEARS),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [...caExtensions(pathLength), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
  return toAuthority(role, tenantId, certificate, keys.privateKeyPem, keys.privateKey);
}

export interface SignParams {
  publicKey: x509.PublicKeyType;
  subject: x509.JsonName;
  notBefore: Date;
  notAfter: Date;
  extensions: x509.Extension[];
}

export async function signWith(issuer: CertificateAuthority, params: SignParams): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: params.subject,
    issuer: issuer.certificate.subjectName,
    notBefore: params.notBefore,
    notAfter: clampToIssuer(params.notAfter, issuer.certificate),
    publicKey: params.publicKey,
    signingKey: issuer.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      ...params.extensions,
      await x509.SubjectKeyIdentifierExtension.create(params.publicKey),
      // Lets OpenSSL and Node pick the right issuer when a tenant's CA is ever re-keyed.
      await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate.publicKey),
    ],
  });
}

/** Rebuilds a CA from persisted PEMs, refusing a key that does not belong to the certificate. */
export async function certificateAuthorityFromPem(params: {
  role: CaRole;
  tenantId: string | undefined;
  certPem: string;
  keyPem: string;
}): Promise<CertificateAuthority> {
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(params.certPem);
  } catch (cause) {
    throw new PkiError('bad-certificate', `cannot parse ${params.role} CA certificate`, { cause });
  }
  const privateKey = await importPrivateKey(params.keyPem);
  const derivedSpki = createPublicKey(params.keyPem).export({ type: 'spki', format: 'der' });
  if (!derivedSpki.equals(Buffer.from(certificate.publicKey.rawData))) {
    throw new PkiError('bad-key', `${params.role} CA private key does not match its certificate ${certificate.subject}`);
  }
  return toAuthority(params.role, params.tenantId, certificate, params.keyPem, privateKey);
}

/** Concatenates certificates (PEM strings or anything with `certPem`) into one PEM bundle. */
export function chainPem(...parts: ReadonlyArray<string | { readonly certPem: string }>): string {
  return parts.map((part) => (typeof part === 'string' ? part : part.certPem).trim() + '\n').join('');
}

export function isRoot(ca: CertificateAuthority): boolean {
  return ca.role === 'tenant-root' || ca.role === 'infra';
}

export function issued(ca: CertificateAuthority, cert: x509.X509Certificate): IssuedCertificate {
  const certPem = cert.toString('pem') + '\n';
  return {
    certPem,
    // Roots are distributed out of band; sending one in the chain only wastes bytes.
    chainPem: isRoot(ca) ? certPem : chainPem(certPem, ca),
    serialNumber: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** Encoded notBefore is backdated by CLOCK_SKEW_MS; notAfter is `start + validityDays`. */
export function validityWindow(validityDays: number, start: Date = new Date()): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(validityDays) || validityDays <= 0) {
    throw new PkiError('bad-validity', `validityDays must be a positive number, got ${validityDays}`);
  }
  if (Number.isNaN(start.getTime())) throw new PkiError('bad-validity', 'notBefore is not a valid date');
  return {
    notBefore: new Date(start.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(start.getTime() + validityDays * DAY_MS),
  };
}
