// @peculiar/x509 resolves its ASN.1 serializers through tsyringe, which needs the
// Reflect metadata polyfill to be installed before the library module is evaluated.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, webcrypto } from 'node:crypto';

// The library's default provider is the global WebCrypto; pin Node's explicitly so behaviour
// does not depend on which globals the host (Node, Electron main, vitest) happens to expose.
x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);

/** Node's WebCrypto key type (the project compiles without the DOM lib). */
export type CryptoKey = webcrypto.CryptoKey;

export type PkiErrorCode =
  | 'bad-identity'
  | 'bad-identity-uri'
  | 'no-identity'
  | 'bad-certificate'
  | 'bad-csr'
  | 'bad-key'
  | 'bad-validity'
  | 'wrong-ca'
  | 'bad-master-key'
  | 'key-store-corrupt'
  | 'store-mismatch'
  | 'revocation-store-corrupt';

export class PkiError extends Error {
  override readonly name = 'PkiError';
  constructor(
    readonly code: PkiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type Identity =
  | { kind: 'client'; tenant: string; user: string; device: string; fingerprint: string }
  | { kind: 'connector'; tenant: string; connector: string; group: string }
  | { kind: 'edge'; name: string };

export type IdentityKind = Identity['kind'];

export interface KeyPair {
  /** PKCS#8 PEM, for persisting and for Node `tls` `key` options. */
  privateKeyPem: string;
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

export const IDENTITY_URI_SCHEME = 'zcc:';
export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** id-ce-subjectAltName; the library's `NAME` statics are display names, not OIDs. */
const SUBJECT_ALT_NAME_OID = '2.5.29.17';

/** Component order per kind, so encoding and parsing cannot drift apart. */
const IDENTITY_FIELDS = {
  client: ['tenant', 'user', 'device', 'fingerprint'],
  connector: ['tenant', 'connector', 'group'],
  edge: ['name'],
} as const satisfies { [K in IdentityKind]: ReadonlyArray<Exclude<keyof Extract<Identity, { kind: K }>, 'kind'>> };

const MAX_COMPONENT_LENGTH = 256;

function isIdentityKind(value: string): value is IdentityKind {
  return Object.hasOwn(IDENTITY_FIELDS, value);
}

function identityComponents(identity: Identity): string[] {
  const fields: readonly string[] = IDENTITY_FIELDS[identity.kind];
  const record = identity as unknown as Record<string, unknown>;
  return fields.map((field) => {
    const value = record[field];
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_COMPONENT_LENGTH) {
      throw new PkiError(
        'bad-identity',
        `${identity.kind} identity field "${field}" must be a non-empty string of at most ${MAX_COMPONENT_LENGTH} characters`,
      );
    }
    return value;
  });
}

export function identityToUri(identity: Identity): string {
  if (!isIdentityKind(identity.kind)) {
    throw new PkiError('bad-identity', `unknown identity kind "${String(identity.kind)}"`);
  }
  const encoded = identityComponents(identity).map((component) => {
    try {
      return encodeURIComponent(component);
    } catch (cause) {
      // Lone UTF-16 surrogates have no UTF-8 form, so they cannot be percent-encoded.
      throw new PkiError('bad-identity', `${identity.kind} identity contains malformed Unicode`, { cause });
    }
  });
  return `${IDENTITY_URI_SCHEME}//${identity.kind}/${encoded.join('/')}`;
}

export function identityFromUri(uri: string): Identity {
  const fail = (why: string): never => {
    throw new PkiError('bad-identity-uri', `malformed identity URI ${JSON.stringify(uri)}: ${why}`);
  };
  const prefix = `${IDENTITY_URI_SCHEME}//`;
  if (!uri.startsWith(prefix)) fail(`expected it to start with "${prefix}"`);
  const [kind = '', ...encoded] = uri.slice(prefix.length).split('/');
  if (!isIdentityKind(kind)) return fail(`unknown kind "${kind}"`);
  const fields: readonly string[] = IDENTITY_FIELDS[kind];
  if (encoded.length !== fields.length) {
    fail(`a ${kind} identity has ${fields.length} path components (${fields.join(', ')}), got ${encoded.length}`);
  }
  const record: Record<string, string> = { kind };
  fields.forEach((field, i) => {
    const raw = encoded[i] ?? '';
    if (raw.length === 0) fail(`empty ${field}`);
    try {
      record[field] = decodeURIComponent(raw);
    } catch {
      fail(`invalid percent-encoding in ${field}`);
    }
  });
  const identity = record as unknown as Identity;
  // Only the canonical spelling is accepted, so one identity has exactly one URI and callers
  // may compare URIs as strings (policy keys, revocation records, logs).
  let canonical: string;
  try {
    canonical = identityToUri(identity);
  } catch (cause) {
    throw new PkiError('bad-identity-uri', `malformed identity URI ${JSON.stringify(uri)}: ${String(cause)}`, { cause });
  }
  if (canonical !== uri) fail(`not in canonical form (expected ${JSON.stringify(canonical)})`);
  return identity;
}

export type CertificateInput = string | Uint8Array | ArrayBuffer;

/** Parses a PEM or DER certificate, mapping library errors onto PkiError. */
export function parseCertificate(input: CertificateInput): x509.X509Certificate {
  try {
    // Copy binary input: the parser wants an ArrayBuffer-backed view, and a Node Buffer may be a
    // slice of a shared pool.
    return new x509.X509Certificate(typeof input === 'string' ? input : new Uint8Array(input));
  } catch (cause) {
    throw new PkiError('bad-certificate', 'cannot parse certificate', { cause });
  }
}

/** The `zcc:` URIs of a certificate's or CSR's subject alternative names. */
export function identityUris(holder: { getExtension(type: string): x509.Extension | null }): string[] {
  const ext = holder.getExtension(SUBJECT_ALT_NAME_OID);
  if (!ext) return [];
  const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : new x509.SubjectAlternativeNameExtension(ext.rawData);
  return san.names.items.filter((n) => n.type === 'url' && n.value.startsWith(IDENTITY_URI_SCHEME)).map((n) => n.value);
}

/**
 * The identity a leaf certificate was issued for. This does NOT verify the certificate: call it
 * only on a certificate that TLS (or an explicit chain check) has already validated, e.g. with
 * `socket.getPeerCertificate().raw`.
 */
export function identityFromCertificate(pemOrDer: CertificateInput): Identity {
  const cert = parseCertificate(pemOrDer);
  let uris: string[];
  try {
    uris = identityUris(cert);
  } catch (cause) {
    throw new PkiError('bad-certificate', `cannot read subject alternative names of ${cert.subject}`, { cause });
  }
  const [uri, ...extra] = uris;
  if (uri === undefined) throw new PkiError('no-identity', `certificate ${cert.subject} carries no zcc identity URI`);
  // Two identities in one certificate would let whichever check reads the "first" one disagree.
  if (extra.length > 0) throw new PkiError('bad-certificate', `certificate ${cert.subject} carries ${uris.length} zcc identity URIs`);
  return identityFromUri(uri);
}

/** SHA-256 of the DER encoding, lower-case hex: the usual pinning fingerprint. */
export function certificateFingerprint(pemOrDer: CertificateInput): string {
  return createHash('sha256').update(new Uint8Array(parseCertificate(pemOrDer).rawData)).digest('hex');
}

function toPem(der: ArrayBuffer, label: string): string {
  const body = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

export async function generateKeyPair(): Promise<KeyPair> {
  // Extractable because the PKCS#8 form is what gets persisted and handed to `tls`.
  const { publicKey, privateKey } = await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', privateKey);
  return { privateKeyPem: toPem(pkcs8, 'PRIVATE KEY'), publicKey, privateKey };
}

/** Imports a PKCS#8 P-256 private key PEM (as produced by generateKeyPair) for signing. */
export async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const match = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(pem);
  if (!match?.[1]) throw new PkiError('bad-key', 'expected a PKCS#8 "PRIVATE KEY" PEM');
  try {
    return await webcrypto.subtle.importKey('pkcs8', Buffer.from(match[1], 'base64'), EC_ALGORITHM, true, ['sign']);
  } catch (cause) {
    throw new PkiError('bad-key', 'private key is not a valid ECDSA P-256 PKCS#8 key', { cause });
  }
}

export interface CsrParams {
  keys: { publicKey: CryptoKey; privateKey: CryptoKey };
  subject: { commonName: string };
  /**
   * What the requester claims to be, if it knows; the CA decides what it actually certifies.
   * A connector, for one, learns its tenant and group only from the enrollment answer.
   */
  identity?: Identity;
}

export async function createCsr({ keys, subject, identity }: CsrParams): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    // JSON form so a commonName containing "," or "=" cannot inject extra RDNs.
    name: [{ CN: [subject.commonName] }],
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: identity ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identityToUri(identity) }])] : [],
  });
  return csr.toString('pem');
}
