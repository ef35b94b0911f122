import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAgentState, SealedStateError, type TenantRecordInput } from '../../src/agent/identity/agent-state.js';
import { openSealedStore, SALT_FILE } from '../../src/agent/identity/sealed-store.js';
import { generateKeyPair } from '../../src/protocol/pki.js';
import { snapshotDir } from '../helpers/netns.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const TOKEN = 'ticket-7c1e0f3b9a2d4e6f8a0b1c2d3e4f5a6b';

let root: string;
let keyPem: string;

function record(tenant: string, extra: Partial<TenantRecordInput> = {}): TenantRecordInput {
  return {
    tenant,
    name: `Org ${tenant}`,
    edge: '127.0.0.1:8443',
    enroll: '127.0.0.1:8444',
    serverName: 'localhost',
    caPem: CERT,
    keyPem,
    certChainPem: CERT + CERT,
    enrolledAt: new Date('2025-01-02T03:04:05.000Z').toISOString(),
    tokens: { auth: TOKEN },
    config: { segments: [{ id: 'intranet', domains: ['intranet.acme.test'] }] },
    ...extra,
  };
}

let n = 0;
async function freshDir(): Promise<string> {
  return join(root, `state-${++n}`, 'agent');
}

async function enrolledDir(fingerprint = FP_A): Promise<string> {
  const dir = await freshDir();
  const state = await openAgentState(dir, { fingerprint });
  await state.writeTenant('acme', record('acme'));
  await state.writeTenant('partner', record('partner'));
  return dir;
}

/** Every regular file in `dir`, for scanning the bytes on disk. */
async function allBytes(dir: string): Promise<Buffer> {
  const names = await readdir(dir);
  return Buffer.concat(await Promise.all(names.map((f) => readFile(join(dir, f)))));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'zcc-sealed-'));
  keyPem = (await generateKeyPair()).privateKeyPem;
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('agent state sealed to the device', () => {
  it('round-trips tenant records, lists, removes, and reopens', async () => {
    const dir = await freshDir();
    const state = await openAgentState(dir, { fingerprint: FP_A });
    expect(await state.listTenants()).toEqual([]);
    const stored = await state.writeTenant('acme', record('acme'));
    await state.writeTenant('partner', record('partner', { name: 'Partner Inc' }));
    expect(await state.readTenant('acme')).toEqual(stored);
    expect(await state.listTenants()).toEqual(['acme', 'partner']);

    const again = await openAgentState(dir, { fingerprint: FP_A });
    expect((await again.readTenant('partner'))?.name).toBe('Partner Inc');
    expect((await again.readTenant('acme'))?.tokens).toEqual({ auth: TOKEN });
    expect(await again.removeTenant('partner')).toBe(true);
    expect(await again.removeTenant('partner')).toBe(false);
    expect(await again.readTenant('partner')).toBeUndefined();
    expect(await again.listTenants()).toEqual(['acme']);
  });

  it('creates the dir 0700 and every file 0600, atomically (no temp files left)', async () => {
    const dir = await freshDir();
    const state = await openAgentState(dir, { fingerprint: FP_A });
    await Promise.all(Array.from({ length: 8 }, (_, i) => state.writeTenant('acme', record('acme', { name: `v${i}` }))));
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const files = await readdir(dir);
    expect(files.sort()).toEqual([SALT_FILE, 'tenant-acme.sealed']);
    for (const f of files) expect(((await stat(join(dir, f))).mode & 0o777).toString(8), f).toBe('600');
    expect((await state.readTenant('acme'))?.name).toMatch(/^v\d$/);
    // A dir someone widened is tightened again once it is known to be ours.
    await chmod(dir, 0o755);
    await openAgentState(dir, { fingerprint: FP_A });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('keeps no plaintext key, certificate or token on disk', async () => {
    const dir = await enrolledDir();
    const bytes = await allBytes(dir);
    expect(bytes.includes('PRIVATE KEY')).toBe(false);
    expect(bytes.includes('BEGIN')).toBe(false);
    expect(bytes.includes(keyPem.split('\n')[1]!)).toBe(false);
    expect(bytes.includes(TOKEN)).toBe(false);
    expect(bytes.includes('intranet.acme.test')).toBe(false);
  });

  it('refuses another device with "enrolled on another device — enroll again" and modifies nothing', async () => {
    const dir = await enrolledDir(FP_A);
    await chmod(dir, 0o750); // would be tightened on a successful open: must stay as it is here
    const before = await snapshotDir(dir);
    const error = await openAgentState(dir, { fingerprint: FP_B }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SealedStateError);
    expect((error as SealedStateError).code).toBe('other-device');
    expect((error as Error).message).toContain('enrolled on another device — enroll again');
    expect((error as Error).message).toContain(dir);
    expect(await snapshotDir(dir)).toEqual(before);
    // Still fine on the device it belongs to.
    expect(await (await openAgentState(dir, { fingerprint: FP_A })).listTenants()).toEqual(['acme', 'partner']);
  });

  it('names the file when a sealed file is damaged', async () => {
    const dir = await enrolledDir();
    const file = join(dir, 'tenant-acme.sealed');
    const bytes = await readFile(file);
    bytes[bytes.length - 20]! ^= 0x01;
    await writeFile(file, bytes);
    const state = await openAgentState(dir, { fingerprint: FP_A });
    await expect(state.readTenant('acme')).rejects.toThrow(`${file} is corrupt`);
    expect((await state.readTenant('partner'))?.tenant).toBe('partner');

    await writeFile(file, bytes.subarray(0, 10));
    await expect(openAgentState(dir, { fingerprint: FP_A })).rejects.toThrow(`${file} is corrupt: not a zcc sealed file`);
  });

  it("binds each file to its name and tenant: one tenant's file moved onto another's does not open", async () => {
    const dir = await enrolledDir();
    await rename(join(dir, 'tenant-partner.sealed'), join(dir, 'tenant-acme.sealed'));
    const state = await openAgentState(dir, { fingerprint: FP_A });
    const err = await state.readTenant('acme').catch((e: unknown) => e as SealedStateError);
    expect(err).toBeInstanceOf(SealedStateError);
    expect((err as SealedStateError).code).toBe('corrupt');
    expect((err as SealedStateError).file).toBe(join(dir, 'tenant-acme.sealed'));
  });

  it('names the salt file when it is damaged or missing, without recreating it', async () => {
    const dir = await enrolledDir();
    const salt = join(dir, SALT_FILE);
    await writeFile(salt, 'nonsense');
    await expect(openAgentState(dir, { fingerprint: FP_A })).rejects.toThrow(`${salt} is corrupt`);
    await rm(salt);
    const before = await snapshotDir(dir);
    await expect(openAgentState(dir, { fingerprint: FP_A })).rejects.toThrow(`${salt} is missing`);
    expect(await snapshotDir(dir)).toEqual(before);
  });

  it('names the file when a record decrypts but is not a valid tenant record', async () => {
    const dir = await freshDir();
    const store = await openSealedStore(dir, FP_A);
    await store.write('tenant-acme', 'acme', Buffer.from('{"tenant":"acme"}'));
    const state = await openAgentState(dir, { fingerprint: FP_A });
    await expect(state.readTenant('acme')).rejects.toThrow(`${join(dir, 'tenant-acme.sealed')} is corrupt: name:`);
  });

  it('validates what it writes and the tenant ids it is given', async () => {
    const dir = await freshDir();
    const state = await openAgentState(dir, { fingerprint: FP_A });
    await expect(state.writeTenant('acme', { ...record('acme'), keyPem: 'not a key' })).rejects.toThrow(/keyPem/);
    await expect(state.writeTenant('acme', record('other'))).rejects.toThrow(/written as tenant "acme"/);
    await expect(state.readTenant('../etc')).rejects.toThrow(/invalid tenant id/);
    expect(await readdir(dir)).toEqual([SALT_FILE]);
  });

  it('refuses a state path that is not a directory', async () => {
    const file = join(root, 'plain-file');
    await mkdir(root, { recursive: true });
    await writeFile(file, 'x');
    await expect(openAgentState(file, { fingerprint: FP_A })).rejects.toThrow(/is not a directory/);
  });
});
