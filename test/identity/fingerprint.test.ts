import { afterEach, describe, expect, it, vi } from 'vitest';

// The OS facts the fingerprint must ignore are made to vary under it; the machine identity
// (the machine-id files on Linux, node-machine-id elsewhere) is stubbed so it can be changed
// without touching the real one.
const os = vi.hoisted(() => ({ hostname: 'laptop-a', user: 'alice', interfaces: 1, uptime: 100, release: '6.1.0-1', totalmem: 16 * 2 ** 30, cpuCount: 8 }));
// machineId: node-machine-id's answer and /var/lib/dbus/machine-id; etcId: /etc/machine-id
// (undefined: the file is missing); dbusFile false: /var/lib/dbus/machine-id is missing.
const ids = vi.hoisted(() => ({ machineId: '0123456789abcdef0123456789abcdef', calls: 0, dbusFile: true, etcId: 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1' as string | undefined }));

vi.mock('node-machine-id', () => ({
  default: {
    machineIdSync: () => {
      ids.calls++;
      return ids.machineId;
    },
  },
}));

const MACHINE_ID_FILES = ['/var/lib/dbus/machine-id', '/etc/machine-id'];
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((file: unknown, ...rest: unknown[]) => {
    if (typeof file === 'string' && MACHINE_ID_FILES.includes(file)) {
      ids.calls++;
      const content = file === MACHINE_ID_FILES[0] ? (ids.dbusFile ? ids.machineId : undefined) : ids.etcId;
      if (content === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${file}'`), { code: 'ENOENT' });
      return `${content}\n`;
    }
    return (real.readFileSync as (...a: unknown[]) => unknown)(file, ...rest);
  }) as typeof real.readFileSync;
  return { ...real, readFileSync, default: { ...real, readFileSync } };
});

vi.mock('node:os', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:os')>();
  const cpu = real.cpus()[0] ?? { model: 'Test CPU', speed: 1, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
  const mocked = {
    ...real,
    hostname: () => os.hostname,
    userInfo: () => ({ ...real.userInfo(), username: os.user }),
    networkInterfaces: () => Object.fromEntries(Array.from({ length: os.interfaces }, (_, i) => [`eth${i}`, []])),
    uptime: () => os.uptime,
    release: () => os.release,
    totalmem: () => os.totalmem,
    cpus: () => Array.from({ length: os.cpuCount }, () => cpu),
  };
  return { ...mocked, default: mocked };
});

const { collectFacts, deviceFingerprint, FINGERPRINT_INPUTS, fingerprintOf, FingerprintError } = await import('../../src/agent/identity/fingerprint.js');

const FACTS = { machineId: '0123456789abcdef0123456789abcdef', platform: 'linux', arch: 'x64', cpuModel: 'Example CPU @ 2.00GHz' };

describe('device fingerprint', () => {
  afterEach(() => {
    ids.machineId = FACTS.machineId;
    ids.dbusFile = true;
    ids.etcId = 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1';
  });

  it('is a SHA-256 hash that depends only on its inputs', () => {
    const a = fingerprintOf({ ...FACTS });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprintOf({ ...FACTS })).toBe(a);
  });

  it('changes when the machine identity changes, or the hardware class', () => {
    const base = fingerprintOf(FACTS);
    expect(fingerprintOf({ ...FACTS, machineId: 'fedcba9876543210fedcba9876543210' })).not.toBe(base);
    expect(fingerprintOf({ ...FACTS, cpuModel: 'Other CPU' })).not.toBe(base);
    expect(fingerprintOf({ ...FACTS, arch: 'arm64' })).not.toBe(base);
  });

  it('hashes exactly the documented inputs: no host name, network, user, uptime, kernel, memory or CPU count', () => {
    expect([...FINGERPRINT_INPUTS]).toEqual(['machineId', 'platform', 'arch', 'cpuModel']);
    expect(Object.keys(collectFacts()).sort()).toEqual([...FINGERPRINT_INPUTS].sort());
  });

  it('stays the same on a new network, a new user session, a reboot, a kernel update', async () => {
    const before = deviceFingerprint();
    Object.assign(os, { hostname: 'laptop-b.hotel-wifi', user: 'bob', interfaces: 5, uptime: 3, release: '6.12.0-9', totalmem: 15.4 * 2 ** 30, cpuCount: 4 });
    const env = { ...process.env };
    process.env.USER = 'bob';
    process.env.HOME = '/home/bob';
    try {
      // The stub is what the module graph sees, so the facts really did change under it.
      const { hostname, networkInterfaces } = await import('node:os');
      expect(hostname()).toBe('laptop-b.hotel-wifi');
      expect(Object.keys(networkInterfaces())).toHaveLength(5);
      expect(deviceFingerprint()).toBe(before);
    } finally {
      process.env = env;
    }
  });

  it('is read afresh each time, so a different machine-id gives a different fingerprint', () => {
    const before = deviceFingerprint();
    const calls = ids.calls;
    ids.machineId = 'fedcba9876543210fedcba9876543210';
    expect(deviceFingerprint()).not.toBe(before);
    expect(ids.calls).toBe(calls + 1);
  });

  it.skipIf(process.platform !== 'linux')('reads the machine-id file, never a host name in its place (node-machine-id falls back to one)', () => {
    ids.machineId = 'laptop-a';
    expect(() => deviceFingerprint()).toThrow(FingerprintError);
    expect(() => deviceFingerprint()).toThrow(/no machine identity/);
  });

  it.skipIf(process.platform !== 'linux')('reads /etc/machine-id when D-Bus keeps none, and refuses to run without either', () => {
    const fromDbus = collectFacts().machineId;
    ids.dbusFile = false;
    expect(collectFacts().machineId).toBe('a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1');
    expect(fromDbus).toBe(FACTS.machineId);
    ids.etcId = undefined;
    expect(() => collectFacts()).toThrow(/no machine identity: \/etc\/machine-id \(or \/var\/lib\/dbus\/machine-id\) is missing/);
  });
});
