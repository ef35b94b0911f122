import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createFileExclusive } from '../ca/atomic-file.js';
// Sets @peculiar/x509's crypto provider to Node's WebCrypto, as for every certificate zcc makes.
import '../../protocol/pki.js';

/** The demo IdP's assertion-signing key and the self-signed certificate its metadata publishes. */
export interface IdpSigningKey {
  /** PKCS#8 PEM; never leaves the cloud's dataDir. */
  readonly keyPem: string;
  readonly certPem: string;
  /** The certificate's DER in base64, as metadata and KeyInfo carry it. */
  readonly certBase64: string;
}

// RSA because SAML deployments expect RSA-SHA256 signatures (the algorithm every IdP and SP
// supports); ECDSA in XML-DSig is far less interoperable.
const RSA = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const;
const CERT_YEARS = 10;

/**
 * Loads the signing key of one tenant's demo IdP from `dir`, creating it on first start. The
 * key is written 0600 and created exclusively, so two cloud processes racing on a fresh dataDir
 * end up with one key rather than a certificate that does not match the key.
 */
export async function loadOrCreateIdpSigningKey(dir: string, entityId: string): Promise<IdpSigningKey> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Key and certificate live in one file, created in one step: a crash can never leave a key
  // next to a certificate that does not match it.
  const file = join(dir, 'signing.pem');
  const existing = await readPair(file);
  if (existing) return existing;

  const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CERT_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString('hex'),
    // JSON form so an entity id with "," or "=" cannot inject extra RDNs.
    name: [{ CN: [`demo IdP ${entityId}`.slice(0, 64)] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: RSA,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  const certPem = cert.toString('pem') + '\n';
  // Exclusive: two cloud processes racing on a fresh dataDir end up sharing the winner's key.
  if (!(await createFileExclusive(file, keyPem + certPem, 0o600))) return (await readPair(file))!;
  return { keyPem, certPem, certBase64: Buffer.from(cert.rawData).toString('base64') };
}

async function readPair(file: string): Promise<IdpSigningKey | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const keyPem = /-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----\n/.exec(text)?.[0];
  const certPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/.exec(text)?.[0];
  if (!keyPem || !certPem) throw new Error(`${file}: expected a private key and a certificate`);
  const cert = new x509.X509Certificate(certPem);
  return { keyPem, certPem, certBase64: Buffer.from(cert.rawData).toString('base64') };
}
