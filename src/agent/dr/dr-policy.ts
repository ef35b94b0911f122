import type { DrMode } from '../../protocol/dr-record.js';
import type { EdgeTarget } from '../tunnel/tunnel-client.js';
import { formatHostPort } from '../dns/upstream.js';

/**
 * Pure decisions of the agent's DR controller, kept apart so they are tested without sockets.
 */

/** Whether DR applies to this device: `on` for everyone, `test` only for the test group. */
export function drApplies(mode: DrMode, inTestGroup: boolean): boolean {
  return mode === 'on' || (mode === 'test' && inTestGroup);
}

/**
 * The private service edges to dial, from the DR domain's A records: sorted so that every poll
 * gives the same list (DNS servers rotate the order; the tunnel does its own round robin).
 */
export function pseTargets(ips: readonly string[], port: number, serverName: string): EdgeTarget[] {
  return [...new Set(ips)].sort().map((ip) => ({ edge: formatHostPort(ip, port), serverName }));
}

export function sameTargets(a: readonly EdgeTarget[], b: readonly EdgeTarget[]): boolean {
  return a.length === b.length && a.every((t, i) => t.edge === b[i]?.edge && t.serverName === b[i]?.serverName);
}

/**
 * Whether the segments a tunnel holds now may be cached: only from the main edge while DR does
 * not apply (a PSE serves the DR subset, which must not replace the full copy).
 */
export function mayCache(opts: { drActive: boolean; connected: boolean; edge: string; pseEdges: readonly EdgeTarget[] }): boolean {
  return !opts.drActive && opts.connected && !opts.pseEdges.some((t) => t.edge === opts.edge);
}
