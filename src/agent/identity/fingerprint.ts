import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import machineId from 'node-machine-id';

/**
 * The device fingerprint: what makes this device this device, as one SHA-256 hash. It is
 * certified in the agent's client certificate at enrollment and presented again on every
 * Z-Tunnel, and it seals the agent's state on disk, so a client (or its state dir) copied to
 * another device is refused there (seed 000).
 *
 * Inputs, and why each one:
 * - `machineId`: the OS installation's identity (Linux: /var/lib/dbus/machine-id, else
 *   /etc/machine-id, read here; macOS: IOPlatformUUID and Windows: MachineGuid, read by
 *   node-machine-id). Random per install, stable across reboots; the one input that tells two
 *   installs of the same hardware apart. Cloning a disk image copies it, which is why the
 *   hardware facts below are hashed in too.
 * - `platform`, `arch`: the OS family and CPU architecture.
 * - `cpuModel`: the CPU's brand string: the hardware class, constant across reboots.
 *
 * Left out on purpose, because they change while the device stays the same: host name,
 * network interfaces and addresses, the user and session, uptime and boot id, kernel release
 * (changes on every kernel update), memory size (kernel reservations move it between boots)
 * and CPU count (hotplug, SMT switched in firmware).
 *
 * Only the hash leaves this module: status and logs show it, never the facts behind it.
 */
export interface FingerprintFacts {
  machineId: string;
  platform: string;
  arch: string;
  cpuModel: string;
}

/** The hashed inputs, in hash order: tests and docs check this list. */
export const FINGERPRINT_INPUTS = ['machineId', 'platform', 'arch', 'cpuModel'] as const satisfies ReadonlyArray<keyof FingerprintFacts>;

/** Bumped whenever the inputs change, so an old and a new fingerprint can never collide. */
const DOMAIN = 'zcc-device-fingerprint-v2\n';

/** systemd's machine-id(5) format: 32 lower-case hex digits. */
const LINUX_MACHINE_ID = /^[0-9a-f]{32}$/;

/** Where D-Bus and systemd keep the machine identity, in the order node-machine-id reads them. */
export const LINUX_MACHINE_ID_FILES = ['/var/lib/dbus/machine-id', '/etc/machine-id'] as const;

export class FingerprintError extends Error {
  override readonly name = 'FingerprintError';
}

/**
 * The OS machine identity, validated. Where neither machine-id file exists, node-machine-id falls
 * back to the host name; a host name is not an identity (anyone can set it, and it changes for
 * reasons unrelated to the device), so that case is an error here, as an empty or malformed id.
 */
function readMachineId(): string {
  let id: string;
  try {
    id = (platform() === 'linux' ? linuxMachineId() : machineId.machineIdSync(true)).trim().toLowerCase();
  } catch (cause) {
    throw new FingerprintError('cannot read the machine identity', { cause });
  }
  if (platform() === 'linux' && !LINUX_MACHINE_ID.test(id)) {
    throw new FingerprintError('no machine identity: /etc/machine-id (or /var/lib/dbus/machine-id) is missing or malformed; run systemd-machine-id-setup');
  }
  if (id.length === 0) throw new FingerprintError('no machine identity: the OS reported an empty machine id');
  return id;
}

/**
 * The first line of the first machine-id file that has one. Read directly: node-machine-id runs
 * `cat … | head` in a shell, synchronously, which held the agent's event loop for 4–5 ms on
 * every Z-Tunnel connect of every tenant (the fingerprint is read afresh each time), and had a
 * root service start a shell and find programs through PATH.
 */
function linuxMachineId(): string {
  for (const file of LINUX_MACHINE_ID_FILES) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const line = text.split('\n', 1)[0]?.trim();
    if (line) return line;
  }
  return '';
}

export function collectFacts(): FingerprintFacts {
  return {
    machineId: readMachineId(),
    platform: platform(),
    arch: arch(),
    cpuModel: cpus()[0]?.model.trim().replace(/\s+/g, ' ') || 'unknown',
  };
}

/** SHA-256 over the facts in a fixed order: the device fingerprint, as 64 hex digits. */
export function fingerprintOf(facts: FingerprintFacts): string {
  const canonical = FINGERPRINT_INPUTS.map((k) => facts[k]).join('\n');
  return createHash('sha256').update(DOMAIN).update(canonical).digest('hex');
}

/**
 * This device's fingerprint, read fresh on every call: a state dir or client copied to another
 * device must see that device's identity, never one remembered from elsewhere.
 */
export function deviceFingerprint(): string {
  return fingerprintOf(collectFacts());
}

/** A fixed fingerprint (tests, a caller that computed it already), or a source read on each use. */
export type FingerprintSource = string | (() => string);

/** The fingerprint a source gives now; this device's when none is configured. */
export function resolveFingerprint(source: FingerprintSource = deviceFingerprint): string {
  return typeof source === 'string' ? source : source();
}

/** What `zcc status` and logs may show: a 64-hex-digit hash. */
export const FINGERPRINT_PATTERN = /^[0-9a-f]{64}$/;
