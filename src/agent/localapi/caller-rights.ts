import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { peerCredentials } from '../../../native/peer-cred.js';

export type CallerRights = 'read-write' | 'read-only';

export interface RightsPolicy {
  /** Group whose members may change things (the "operator" group), by gid. */
  operatorGid?: number;
}

/** Supplementary groups of a process, from /proc (SO_PEERCRED reports only the primary one). */
function groupsOf(pid: number): number[] {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Groups:'));
    return line ? line.slice(7).trim().split(/\s+/).filter(Boolean).map(Number) : [];
  } catch {
    return [];
  }
}

/**
 * What a local caller may do, decided from the kernel's view of the peer: root, the agent's own
 * user, and members of the operator group may change things; everyone else may only look.
 */
export function callerRights(socket: Socket, policy: RightsPolicy): { rights: CallerRights; uid: number; pid: number } {
  const cred = peerCredentials(socket);
  const own = process.getuid?.() ?? -1;
  const operator =
    policy.operatorGid !== undefined && (cred.gid === policy.operatorGid || groupsOf(cred.pid).includes(policy.operatorGid));
  const rights: CallerRights = cred.uid === 0 || cred.uid === own || operator ? 'read-write' : 'read-only';
  return { rights, uid: cred.uid, pid: cred.pid };
}
