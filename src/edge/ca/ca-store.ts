// On-disk persistence of the cloud's CAs. Layout of a store directory:
//   pki.json                 which PKI this is (tenant id or infra), so a mix-up is caught
//   <name>.crt               certificate PEM, 0644
//   <name>.key.enc           PKCS#8 key sealed with AES-256-GCM under the master key, 0600
// The master key lives in its own file, ideally outside the store, so a copy of the store
// alone reveals no key.
import 'reflect-metadata';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { PkiError } from '../../protocol/pki.js';
import { createFileExclusive, writeFileAtomic } from './atomic-file.js';
import {
  certificateAuthorityFromPem,
  createInfraCa,
  createTenantPki,
  type CaRole,
  type CertificateAuthority,
  type TenantPki,
} from './tenant-pki.js';

export const MASTER_KEY_BYTES = 32;
const SECRET_MODE = 0o600;
const PUBLIC_MODE = 0o644;
const DIR_MODE = 0o755;
const MANIFEST_FILE = 'pki.json';
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;

const Manifest = z.discriminatedUnion('kind', [
  z.object({ format: z.literal('zcc-ca-store'), version: z.literal(1), kind: z.literal('tenant'), tenantId: z.string() }),
  z.object({ format: z.literal('zcc-ca-store'), version: z.literal(1), kind: z.literal('infra') }),
]);
type Manifest = z.infer<typeof Manifest>;

const SealedKey = z.object({
  format: z.literal('zcc-sealed-key'),
  version: z.literal(1),
  iv: z.string(),
  tag: z.string(),
  ciphertext: z.string(),
});

interface StoredCa {
  /** File name stem inside the store. */
  name: string;
  role: CaRole;
}

const TENANT_CAS: readonly StoredCa[] = [
  { name: 'root', role: 'tenant-root' },
  { name: 'client', role: 'client' },
  { name: 'connector', role: 'connector' },
];
const INFRA_CAS: readonly StoredCa[] = [{ name: 'infra', role: 'infra' }];

function isErrno(error: unknown, ...codes: string[]): boolean {
  return codes.includes((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

function checkMasterKey(masterKey: Uint8Array): void {
  if (masterKey.length !== MASTER_KEY_BYTES) {
    throw new PkiError('bad-master-key', `master key must be ${MASTER_KEY_BYTES} bytes, got ${masterKey.length}`);
  }
}

/** Reads the master key, creating a random one (mode 0600) on first use. */
export async function loadOrCreateMasterKey(file: string): Promise<Buffer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    await mkdir(dirname(file), { recursive: true });
    // A concurrent creator may win; either way everyone then reads the same key.
    await createFileExclusive(file, randomBytes(MASTER_KEY_BYTES).toString('hex') + '\n', SECRET_MODE);
    text = await readFile(file, 'utf8');
  }
  const hex = text.trim();
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== MASTER_KEY_BYTES * 2) {
    throw new PkiError('bad-master-key', `master key file ${file} must hold ${MASTER_KEY_BYTES} bytes as hex`);
  }
  return Buffer.from(hex, 'hex');
}

/**
 * Additional authenticated data binding a sealed key to its place in the store, so that
 * swapping key files between roles or tenants fails authentication instead of loading.
 */
function keyBinding(manifest: Manifest, role: CaRole): Buffer {
  const owner = manifest.kind === 'tenant' ? manifest.tenantId : null;
  return Buffer.from(JSON.stringify(['zcc-ca-key', 1, manifest.kind, owner, role]), 'utf8');
}

function sealKey(masterKey: Uint8Array, keyPem: string, aad: Buffer): string {
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv).setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(keyPem, 'utf8'), cipher.final()]);
  const sealed: z.infer<typeof SealedKey> = {
    format: 'zcc-sealed-key',
    version: 1,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
  return JSON.stringify(sealed, null, 2) + '\n';
}

function unsealKey(masterKey: Uint8Array, file: string, text: string, aad: Buffer): string {
  const corrupt = (why: string, cause?: unknown): PkiError =>
    new PkiError('key-store-corrupt', `CA key file ${file} ${why}`, cause === undefined ? undefined : { cause });
  let sealed: z.infer<typeof SealedKey>;
  try {
    sealed = SealedKey.parse(JSON.parse(text));
  } catch (cause) {
    throw corrupt('is not a sealed key', cause);
  }
  const iv = Buffer.from(sealed.iv, 'base64');
  const tag = Buffer.from(sealed.tag, 'base64');
  if (iv.length !== GCM_IV_BYTES || tag.length !== GCM_TAG_BYTES) throw corrupt('has a malformed IV or tag');
  try {
    const decipher = createDecipheriv('aes-256-gcm', masterKey, iv).setAAD(aad).setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw corrupt('failed authentication: it was tampered with, moved, or sealed under another master key', cause);
  }
}

async function writeStore(
  dir: string,
  manifest: Manifest,
  cas: ReadonlyArray<readonly [StoredCa, CertificateAuthority]>,
  masterKey: Uint8Array,
): Promise<void> {
  for (const [stored, ca] of cas) {
    await writeFileAtomic(join(dir, `${stored.name}.crt`), ca.certPem, PUBLIC_MODE);
    await writeFileAtomic(join(dir, `${stored.name}.key.enc`), sealKey(masterKey, ca.keyPem, keyBinding(manifest, stored.role)), SECRET_MODE);
  }
  // Written last: its presence marks a complete store.
  await writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n', PUBLIC_MODE);
}

async function readManifest(dir: string, expected: Manifest): Promise<void> {
  const file = join(dir, MANIFEST_FILE);
  let manifest: Manifest;
  try {
    manifest = Manifest.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (cause) {
    throw new PkiError('key-store-corrupt', `CA store manifest ${file} is missing or unreadable`, { cause });
  }
  const owner = (m: Manifest): string | null => (m.kind === 'tenant' ? m.tenantId : null);
  if (manifest.kind !== expected.kind || owner(manifest) !== owner(expected)) {
    throw new PkiError('store-mismatch', `CA store ${dir} holds ${JSON.stringify(manifest)}, expected ${JSON.stringify(expected)}`);
  }
}

async function readStoreFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new PkiError('key-store-corrupt', `CA store file ${file} is missing or unreadable`, { cause });
  }
}

async function readCa(dir: string, manifest: Manifest, stored: StoredCa, masterKey: Uint8Array): Promise<CertificateAuthority> {
  const certFile = join(dir, `${stored.name}.crt`);
  const keyFile = join(dir, `${stored.name}.key.enc`);
  const certPem = await readStoreFile(certFile);
  const sealed = await readStoreFile(keyFile);
  const keyPem = unsealKey(masterKey, keyFile, sealed, keyBinding(manifest, stored.role));
  const tenantId = manifest.kind === 'tenant' ? manifest.tenantId : undefined;
  try {
    return await certificateAuthorityFromPem({ role: stored.role, tenantId, certPem, keyPem });
  } catch (cause) {
    // The key authenticated, so a mismatch means the plaintext certificate was altered.
    throw new PkiError('key-store-corrupt', `CA certificate ${certFile} is unreadable or does not match its key ${keyFile}`, { cause });
  }
}

async function assertIssuedBy(dir: string, stored: StoredCa, ca: CertificateAuthority, issuer: CertificateAuthority): Promise<void> {
  const ok = await ca.certificate
    .verify({ publicKey: issuer.certificate.publicKey, signatureOnly: true })
    .catch(() => false);
  if (!ok) {
    throw new PkiError('key-store-corrupt', `CA certificate ${join(dir, `${stored.name}.crt`)} is not signed by ${issuer.role} CA`);
  }
}

async function loadStore(
  dir: string,
  manifest: Manifest,
  layout: readonly StoredCa[],
  masterKey: Uint8Array,
): Promise<CertificateAuthority[]> {
  await readManifest(dir, manifest);
  // Sequential, so that with several bad files the reported one is always the same.
  const cas: CertificateAuthority[] = [];
  for (const stored of layout) cas.push(await readCa(dir, manifest, stored, masterKey));
  // The first entry is the root: every CA, itself included, must carry its signature.
  const root = cas[0];
  if (!root) throw new Error('CA store layout is empty');
  for (const [i, stored] of layout.entries()) await assertIssuedBy(dir, stored, cas[i] ?? root, root);
  return cas;
}

/**
 * Loads the store in `dir`, or creates it. A new store is assembled in a sibling staging
 * directory and renamed into place, so a crash leaves no half-written store and two racing
 * creators end up sharing whichever store landed first.
 */
async function loadOrCreateStore(
  dir: string,
  manifest: Manifest,
  layout: readonly StoredCa[],
  masterKey: Uint8Array,
  create: () => Promise<CertificateAuthority[]>,
): Promise<CertificateAuthority[]> {
  checkMasterKey(masterKey);
  const exists = await access(join(dir, MANIFEST_FILE)).then(
    () => true,
    (error: unknown) => {
      if (isErrno(error, 'ENOENT')) return false;
      throw error;
    },
  );
  if (exists) return loadStore(dir, manifest, layout, masterKey);
  const cas = await create();
  await mkdir(dirname(dir), { recursive: true });
  const staging = `${dir}.staging-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(staging, { mode: DIR_MODE });
    await writeStore(staging, manifest, layout.map((stored, i) => [stored, cas[i] as CertificateAuthority] as const), masterKey);
    // rename(2) replaces an empty directory but fails on a populated one.
    await rename(staging, dir);
    return cas;
  } catch (error) {
    if (!isErrno(error, 'ENOTEMPTY', 'EEXIST')) throw error;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return loadStore(dir, manifest, layout, masterKey);
}

export async function loadOrCreateTenantPki(dir: string, tenantId: string, masterKey: Uint8Array): Promise<TenantPki> {
  const manifest: Manifest = { format: 'zcc-ca-store', version: 1, kind: 'tenant', tenantId };
  const [root, client, connector] = await loadOrCreateStore(dir, manifest, TENANT_CAS, masterKey, async () => {
    const pki = await createTenantPki(tenantId);
    return [pki.root, pki.client, pki.connector];
  });
  if (!root || !client || !connector) throw new Error('tenant CA store returned an incomplete PKI');
  return { tenantId, root, client, connector };
}

export async function loadOrCreateInfraCa(dir: string, masterKey: Uint8Array): Promise<CertificateAuthority> {
  const manifest: Manifest = { format: 'zcc-ca-store', version: 1, kind: 'infra' };
  const [infra] = await loadOrCreateStore(dir, manifest, INFRA_CAS, masterKey, async () => [await createInfraCa()]);
  if (!infra) throw new Error('infra CA store returned no CA');
  return infra;
}
