import { compareSpecificity, matchesDomain, tryNormalizeName } from '../../protocol/domain-match.js';
import type { AppSegment } from '../../protocol/segments.js';

export interface RoutableTenant {
  id: string;
  segments: readonly AppSegment[];
}

/**
 * Which tenant owns a name: the one with the most specific matching domain; on a tie the tenant
 * listed first (the primary) wins. Returns the matching pattern for logs and status.
 */
export function routeName<T extends RoutableTenant>(tenants: readonly T[], name: string): { tenant: T; pattern: string } | undefined {
  const fqdn = tryNormalizeName(name);
  if (!fqdn) return undefined;
  let best: { tenant: T; pattern: string } | undefined;
  for (const tenant of tenants) {
    for (const segment of tenant.segments) {
      for (const pattern of segment.domains) {
        if (!matchesDomain(pattern, fqdn)) continue;
        if (!best || compareSpecificity(pattern, best.pattern) < 0) best = { tenant, pattern };
      }
    }
  }
  return best;
}
