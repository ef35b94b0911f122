// A state dir copied to another device must not open there. "Another device" is real here: the
// opener runs in its own mount namespace where /etc/machine-id (and /var/lib/dbus/machine-id)
// hold another identity, so the fingerprint code reads what a different machine would.
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAgentState } from '../../src/agent/identity/agent-state.js';
import { deviceFingerprint } from '../../src/agent/identity/fingerprint.js';
import { generateKeyPair } from '../../src/protocol/pki.js';
import { namespaceSupport, runAsOtherMachine, snapshotDir, type RunResult } from '../helpers/netns.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'open-agent-state.ts');
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

const support = namespaceSupport(['mount']);
if (!support.ok) console.warn(`copy-device test skipped: ${support.reason}`);

/** Runs the opener script with node + tsx as a machine whose machine-id is `machineId`. */
function openAs(machineId: string, arg: string): Promise<RunResult> {
  return runAsOtherMachine(machineId, { command: process.execPath, args: ['--import', 'tsx', SCRIPT, arg], cwd: ROOT, timeoutMs: 30_000 });
}

describe.skipIf(!support.ok)('a state dir copied to another device (real namespace with another machine-id)', () => {
  let root: string;
  let enrolled: string;
  let ownMachineId: string;
  const otherMachineId = randomBytes(16).toString('hex');

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'zcc-copy-device-'));
    ownMachineId = (await readFile('/etc/machine-id', 'utf8')).trim();
    enrolled = join(root, 'device-a', 'agent');
    const state = await openAgentState(enrolled);
    await state.writeTenant('acme', {
      tenant: 'acme',
      name: 'Acme',
      edge: '127.0.0.1:8443',
      serverName: 'localhost',
      caPem: CERT,
      keyPem: (await generateKeyPair()).privateKeyPem,
      certChainPem: CERT,
      enrolledAt: new Date().toISOString(),
    });
  });

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('the namespace really is another machine: its fingerprint differs, with this one restored it matches', async () => {
    const other = await openAs(otherMachineId, '--fingerprint');
    expect(other.code, other.stderr).toBe(0);
    const fp = (JSON.parse(other.stdout) as { fingerprint: string }).fingerprint;
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(fp).not.toBe(deviceFingerprint());

    const same = await openAs(ownMachineId, '--fingerprint');
    expect(same.code, same.stderr).toBe(0);
    expect((JSON.parse(same.stdout) as { fingerprint: string }).fingerprint).toBe(deviceFingerprint());
  });

  it('opens on the device it was enrolled on (control: same script, same namespace set-up)', async () => {
    const r = await openAs(ownMachineId, enrolled);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ tenants: ['acme'] });
  });

  it('refuses the copy on another device with "enrolled on another device — enroll again" and changes no file', async () => {
    const copy = join(root, 'device-b', 'agent');
    await cp(enrolled, copy, { recursive: true, preserveTimestamps: true });
    const before = await snapshotDir(copy);

    const r = await openAs(otherMachineId, copy);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('enrolled on another device — enroll again');
    expect(r.stderr).toContain(copy);
    expect(await snapshotDir(copy)).toEqual(before);
  });
});
