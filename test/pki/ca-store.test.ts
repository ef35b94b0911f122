import { randomBytes } from 'node:crypto';
import { readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PkiError, identityFromCertificate } from '../../src/protocol/pki.js';
import {
  createTenantPki,
  loadOrCreateInfraCa,
  loadOrCreateMasterKey,
  loadOrCreateTenantPki,
  openRevocationList,
} from '../../src/edge/ca/index.js';
import { clientIdentity, enroll, opensslVerify, withTempDir } from './fixtures.js';

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

async function rejection(promise: Promise<unknown>): Promise<PkiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (error instanceof PkiError) return error;
  throw new Error(`expected a PkiError, got ${String(error)}`);
}

describe('master key', () => {
  it('is created once with mode 0600 and read back unchanged', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'secrets', 'master.key');
      const first = await loadOrCreateMasterKey(file);
      expect(first).toHaveLength(32);
      expect(await mode(file)).toBe(0o600);
      expect(await loadOrCreateMasterKey(file)).toEqual(first);
      const racing = await Promise.all([1, 2, 3, 4].map((i) => loadOrCreateMasterKey(join(dir, 'race.key')).then((k) => [i, k] as const)));
      expect(new Set(racing.map(([, k]) => k.toString('hex'))).size).toBe(1);
      expect((await readdir(dir)).sort()).toEqual(['race.key', 'secrets']);
    });
  });

  it('rejects a malformed key file and a wrongly sized key', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'master.key');
      await writeFile(file, 'abcd\n');
      const error = await rejection(loadOrCreateMasterKey(file));
      expect(error.code).toBe('bad-master-key');
      expect(error.message).toContain(file);
      expect((await rejection(loadOrCreateTenantPki(join(dir, 'pki'), 'demo', randomBytes(16)))).code).toBe('bad-master-key');
    });
  });
});

describe('tenant CA store', () => {
  it('persists encrypted keys (0600) and certificates (0644) and loads them back', async () => {
    await withTempDir(async (dir) => {
      const masterKey = randomBytes(32);
      const storeDir = join(dir, 'tenants', 'demo');
      const created = await loadOrCreateTenantPki(storeDir, 'demo', masterKey);
      expect((await readdir(storeDir)).sort()).toEqual([
        'client.crt',
        'client.key.enc',
        'connector.crt',
        'connector.key.enc',
        'pki.json',
        'root.crt',
        'root.key.enc',
      ]);
      // Nothing left from staging or temp files.
      expect(await readdir(join(dir, 'tenants'))).toEqual(['demo']);
      for (const name of ['root', 'client', 'connector']) {
        expect(await mode(join(storeDir, `${name}.key.enc`))).toBe(0o600);
        expect(await mode(join(storeDir, `${name}.crt`))).toBe(0o644);
        const sealed = await readFile(join(storeDir, `${name}.key.enc`), 'utf8');
        expect(sealed).not.toContain('PRIVATE KEY');
      }

      const loaded = await loadOrCreateTenantPki(storeDir, 'demo', masterKey);
      for (const role of ['root', 'client', 'connector'] as const) {
        expect(loaded[role].certPem).toBe(created[role].certPem);
        expect(loaded[role].keyPem).toBe(created[role].keyPem);
        expect(loaded[role].role).toBe(created[role].role);
        expect(loaded[role].tenantId).toBe('demo');
      }
      // The reloaded key really signs: a new leaf chains to the root created the first time.
      const leaf = await enroll(loaded.client, clientIdentity('demo'));
      await opensslVerify({ root: created.root.certPem, untrusted: created.client.certPem, leaf: leaf.certPem, purpose: 'sslclient' });
      expect(identityFromCertificate(leaf.certPem)).toEqual(clientIdentity('demo'));
    });
  });

  it('lets racing creators converge on one PKI', async () => {
    await withTempDir(async (dir) => {
      const masterKey = randomBytes(32);
      const storeDir = join(dir, 'demo');
      const pkis = await Promise.all([1, 2, 3].map(() => loadOrCreateTenantPki(storeDir, 'demo', masterKey)));
      expect(new Set(pkis.map((p) => p.root.certPem)).size).toBe(1);
      expect(await readdir(dir)).toEqual(['demo']);
    });
  });

  it('detects a wrong master key, tampering, swapped and missing files, naming the file', async () => {
    await withTempDir(async (dir) => {
      const masterKey = randomBytes(32);
      const storeDir = join(dir, 'demo');
      await loadOrCreateTenantPki(storeDir, 'demo', masterKey);
      const load = (): Promise<unknown> => loadOrCreateTenantPki(storeDir, 'demo', masterKey);
      const expectCorrupt = async (promise: Promise<unknown>, file: string): Promise<void> => {
        const error = await rejection(promise);
        expect(error.code).toBe('key-store-corrupt');
        expect(error.message).toContain(join(storeDir, file));
      };

      await expectCorrupt(loadOrCreateTenantPki(storeDir, 'demo', randomBytes(32)), 'root.key.enc');

      const keyFile = join(storeDir, 'client.key.enc');
      const original = await readFile(keyFile, 'utf8');
      const sealed = JSON.parse(original) as { ciphertext: string };
      const bytes = Buffer.from(sealed.ciphertext, 'base64');
      bytes[10] = (bytes[10] ?? 0) ^ 0x01;
      await writeFile(keyFile, JSON.stringify({ ...sealed, ciphertext: bytes.toString('base64') }));
      await expectCorrupt(load(), 'client.key.enc');
      await writeFile(keyFile, 'not json');
      await expectCorrupt(load(), 'client.key.enc');
      await writeFile(keyFile, original);
      await load();

      // Keys are bound to their role: a swapped pair fails authentication.
      const connectorFile = join(storeDir, 'connector.key.enc');
      await rename(keyFile, join(storeDir, 'tmp'));
      await rename(connectorFile, keyFile);
      await rename(join(storeDir, 'tmp'), connectorFile);
      await expectCorrupt(load(), 'client.key.enc');
      await rename(keyFile, join(storeDir, 'tmp'));
      await rename(connectorFile, keyFile);
      await rename(join(storeDir, 'tmp'), connectorFile);

      // Certificates are plaintext; a replaced one no longer matches its sealed key.
      const certFile = join(storeDir, 'client.crt');
      const cert = await readFile(certFile, 'utf8');
      await writeFile(certFile, (await createTenantPki('demo')).client.certPem);
      await expectCorrupt(load(), 'client.crt');
      await writeFile(certFile, cert);

      await rm(join(storeDir, 'connector.crt'));
      await expectCorrupt(load(), 'connector.crt');
    });
  });

  it('refuses to load another tenant’s store', async () => {
    await withTempDir(async (dir) => {
      const masterKey = randomBytes(32);
      await loadOrCreateTenantPki(join(dir, 'demo'), 'demo', masterKey);
      const error = await rejection(loadOrCreateTenantPki(join(dir, 'demo'), 'other', masterKey));
      expect(error.code).toBe('store-mismatch');
      expect((await rejection(loadOrCreateInfraCa(join(dir, 'demo'), masterKey))).code).toBe('store-mismatch');
    });
  });

  it('persists the infrastructure CA the same way', async () => {
    await withTempDir(async (dir) => {
      const masterKey = randomBytes(32);
      const created = await loadOrCreateInfraCa(join(dir, 'infra'), masterKey);
      expect(created.role).toBe('infra');
      expect(await mode(join(dir, 'infra', 'infra.key.enc'))).toBe(0o600);
      const loaded = await loadOrCreateInfraCa(join(dir, 'infra'), masterKey);
      expect(loaded.certPem).toBe(created.certPem);
      expect(loaded.keyPem).toBe(created.keyPem);
    });
  });
});

describe('revocation list', () => {
  it('persists revoked serials (0600) whatever their spelling', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'demo', 'revoked.json');
      const list = await openRevocationList(file, 'demo');
      expect(list.isRevoked('0a1b')).toBe(false);
      await Promise.all([list.revoke('0A:1B'), list.revoke('ff'), list.revoke('a1b')]);
      expect(await mode(file)).toBe(0o600);
      expect(list.isRevoked('a1b')).toBe(true);
      expect(list.isRevoked('000A1B')).toBe(true);
      expect(list.isRevoked('a1c')).toBe(false);

      const reopened = await openRevocationList(file, 'demo');
      expect(reopened.entries().map((e) => e.serial).sort()).toEqual(['a1b', 'ff']);
      expect(reopened.isRevoked('FF')).toBe(true);
      expect(await readdir(join(dir, 'demo'))).toEqual(['revoked.json']);
      await expect(list.revoke('not-hex')).rejects.toThrow(PkiError);
    });
  });

  it('rejects a corrupt file and another tenant’s list', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'revoked.json');
      await (await openRevocationList(file, 'demo')).revoke('01');
      expect((await rejection(openRevocationList(file, 'other'))).code).toBe('store-mismatch');
      await writeFile(file, '{"format":"zcc-revocations"');
      const error = await rejection(openRevocationList(file, 'demo'));
      expect(error.code).toBe('revocation-store-corrupt');
      expect(error.message).toContain(file);
    });
  });
});
