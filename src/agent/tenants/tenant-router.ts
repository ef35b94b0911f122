import { tryNormalizeName } from '../../protocol/domain-match.js';
import { matchingSegments, type SegmentCandidate } from '../../protocol/segment-domains.js';
import type { AppSegment } from '../../protocol/segments.js';

export interface RoutableTenant {
  id: string;
  /**
   * Treated as immutable: an index of it is built once and reused for as long as the array
   * lives, so a change must come as a new array (as TunnelClient does on every update).
   */
  segments: readonly AppSegment[];
}

/**
 * Which tenant owns a name: the one with the most specific matching domain; on a tie the tenant
 * listed first (the primary) wins. Returns the matching pattern for logs and status.
 * Throws InvalidDomainError when a segment carries an invalid pattern.
 */
export function routeName<T extends RoutableTenant>(tenants: readonly T[], name: string): { tenant: T; pattern: string } | undefined {
  const fqdn = tryNormalizeName(name);
  if (!fqdn) return undefined;
  let best: { tenant: T; match: SegmentCandidate } | undefined;
  for (const tenant of tenants) {
    // Its segments' most specific match (protocol/segment-domains.ts: a lookup per label, then a memo).
    const m = matchingSegments(tenant.segments, fqdn)[0];
    if (m && (!best || m.rank > best.match.rank)) best = { tenant, match: m };
  }
  return best && { tenant: best.tenant, pattern: best.match.domain };
}
