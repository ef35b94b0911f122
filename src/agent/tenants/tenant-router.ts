import { normalizePattern, specificity, tryNormalizeName } from '../../protocol/domain-match.js';
import type { AppSegment } from '../../protocol/segments.js';

export interface RoutableTenant {
  id: string;
  /**
   * Treated as immutable: an index of it is built once and reused for as long as the array
   * lives, so a change must come as a new array (as TunnelClient does on every update).
   */
  segments: readonly AppSegment[];
}

/** Names remembered per segment list. */
const MEMO_ENTRIES = 4096;

interface Match {
  /** The pattern as written in the segment (the first one, when several normalise alike). */
  pattern: string;
  rank: number;
}

/**
 * One tenant's segment domains as two Maps: exact names, and wildcard suffixes (without the
 * "*."). A name then costs one lookup per label instead of a match per pattern, and a name
 * seen before one lookup in a memo. Among the patterns matching one name, exact ones outrank
 * wildcards and longer suffixes outrank shorter ones (domain-match.ts specificity); patterns
 * of equal rank that both match are the same name, and the first one listed is kept, as the
 * linear scan kept it.
 */
class SegmentIndex {
  private readonly exact = new Map<string, Match>();
  private readonly wildcard = new Map<string, Match>();
  /** The InvalidDomainError of the first invalid pattern: routing throws it, as matching did. */
  private readonly error: unknown;
  /** Answers already worked out (null: no match); the segment list never changes under it. */
  private readonly memo = new Map<string, Match | null>();

  constructor(segments: readonly AppSegment[]) {
    try {
      for (const segment of segments) {
        for (const pattern of segment.domains) {
          const p = normalizePattern(pattern);
          const wild = p.startsWith('*.');
          const map = wild ? this.wildcard : this.exact;
          const key = wild ? p.slice(2) : p;
          if (!map.has(key)) map.set(key, { pattern, rank: specificity(p) });
        }
      }
    } catch (err) {
      this.error = err;
    }
  }

  /** The most specific pattern matching a normalised name. */
  best(fqdn: string): Match | undefined {
    if (this.error !== undefined) throw this.error;
    const known = this.memo.get(fqdn);
    if (known !== undefined) return known ?? undefined;
    const m = this.search(fqdn);
    // Bounded: a flood of random names only ever costs a fresh start.
    if (this.memo.size >= MEMO_ENTRIES) this.memo.clear();
    this.memo.set(fqdn, m ?? null);
    return m;
  }

  private search(fqdn: string): Match | undefined {
    const exact = this.exact.get(fqdn);
    if (exact) return exact;
    if (this.wildcard.size === 0) return undefined;
    // Longest proper suffix first: "a.b.c" tries "b.c", then "c".
    for (let i = fqdn.indexOf('.'); i !== -1; i = fqdn.indexOf('.', i + 1)) {
      const m = this.wildcard.get(fqdn.slice(i + 1));
      if (m) return m;
    }
    return undefined;
  }
}

const indexes = new WeakMap<readonly AppSegment[], SegmentIndex>();

function indexOf(segments: readonly AppSegment[]): SegmentIndex {
  let index = indexes.get(segments);
  if (!index) {
    index = new SegmentIndex(segments);
    indexes.set(segments, index);
  }
  return index;
}

/**
 * Which tenant owns a name: the one with the most specific matching domain; on a tie the tenant
 * listed first (the primary) wins. Returns the matching pattern for logs and status.
 * Throws InvalidDomainError when a segment carries an invalid pattern.
 */
export function routeName<T extends RoutableTenant>(tenants: readonly T[], name: string): { tenant: T; pattern: string } | undefined {
  const fqdn = tryNormalizeName(name);
  if (!fqdn) return undefined;
  let best: { tenant: T; match: Match } | undefined;
  for (const tenant of tenants) {
    const m = indexOf(tenant.segments).best(fqdn);
    if (m && (!best || m.rank > best.match.rank)) best = { tenant, match: m };
  }
  return best && { tenant: best.tenant, pattern: best.match.pattern };
}
