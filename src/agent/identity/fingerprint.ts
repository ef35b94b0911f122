import { createHash } from 'node:crypto';
import { arch, cpus, platform, totalmem } from 'node:os';
import machineId from 'node-machine-id';

/**
 * Facts that make a device this device. Chosen to survive a new network, a new user session, a
 * reboot and an agent upgrade, and to change when the OS identity (machine-id) or the hardware
 * class changes. Only their hash ever leaves this module.
 */
export interface FingerprintFacts {
  machineId: string;
  platform: string;
  arch: string;
  cpuModel: string;
  cpuCount: number;
  memoryGiB: number;
}

export function collectFacts(): FingerprintFacts {
  const cpu = cpus();
  return {
    machineId: machineId.machineIdSync(true),
    platform: platform(),
    arch: arch(),
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cpuCount: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** SHA-256 over the facts in a fixed order: the device fingerprint, as 64 hex digits. */
export function fingerprintOf(facts: FingerprintFacts): string {
  const canonical = [facts.machineId, facts.platform, facts.arch, facts.cpuModel, facts.cpuCount, facts.memoryGiB].join('\n');
  return createHash('sha256').update('zcc-device-fingerprint-v1\n').update(canonical).digest('hex');
}

export function deviceFingerprint(): string {
  return fingerprintOf(collectFacts());
}
