import { normalizePattern, specificity } from './domain-match.js';
import type { AppSegment } from './segments.js';

/** A segment whose domains match a name, with its most specific matching domain. */
export interface SegmentCandidate {
  segment: AppSegment;
  /** The segment's position in the list (configuration order). */
  at: number;
  /** The segment's most specific domain that matched the name. */
  domain: string;
  rank: number;
}

interface Listed {
  /** Position of the segment in the list: the tie-break among equally specific segments. */
  at: number;
  domain: string;
  rank: number;
}

/** Names remembered per segment list. */
const MEMO_ENTRIES = 4096;

/**
 * A segment list's domains as two Maps, exact names and wildcard suffixes (without the "*."),
 * so a name costs one lookup per label instead of a match of every domain of every segment,
 * and a name seen before one lookup in a memo. Asked on every microtunnel open (the edge's
 * policy) and every intercepted connection (the agent's port gate): matching every domain of
 * every segment, both sides normalised each time, took 381–418 µs per open with 500 segments
 * of two domains each.
 */
class SegmentDomains {
  private readonly exact = new Map<string, Listed[]>();
  private readonly wildcard = new Map<string, Listed[]>();
  private readonly memo = new Map<string, readonly SegmentCandidate[]>();
  /** The InvalidDomainError of the first invalid pattern, which is left out of the index. */
  readonly error: unknown;

  constructor(private readonly segments: readonly AppSegment[]) {
    segments.forEach((segment, at) => {
      for (const domain of segment.domains) {
        let p: string;
        try {
          p = normalizePattern(domain);
        } catch (err) {
          (this as { error: unknown }).error ??= err;
          continue;
        }
        const wild = p.startsWith('*.');
        const map = wild ? this.wildcard : this.exact;
        const key = wild ? p.slice(2) : p;
        const listed = map.get(key);
        const entry = { at, domain, rank: specificity(p) };
        if (listed) listed.push(entry);
        else map.set(key, [entry]);
      }
    });
  }

  /** Segments whose domains match a normalised name, most specific first; ties keep list order. */
  candidates(name: string): readonly SegmentCandidate[] {
    let found = this.memo.get(name);
    if (found) return found;
    // Per segment its most specific matching domain; of equally specific ones (the same name
    // spelled alike) the first listed.
    const best = new Map<number, Listed>();
    const consider = (hits: Listed[] | undefined): void => {
      for (const h of hits ?? []) {
        const b = best.get(h.at);
        if (!b || h.rank > b.rank) best.set(h.at, h);
      }
    };
    consider(this.exact.get(name));
    for (let i = name.indexOf('.'); i !== -1; i = name.indexOf('.', i + 1)) consider(this.wildcard.get(name.slice(i + 1)));
    found = [...best.values()]
      .sort((a, b) => b.rank - a.rank || a.at - b.at)
      .map((h) => ({ segment: this.segments[h.at] as AppSegment, at: h.at, domain: h.domain, rank: h.rank }));
    // Bounded: a flood of random names only ever costs a fresh start.
    if (this.memo.size >= MEMO_ENTRIES) this.memo.clear();
    this.memo.set(name, found);
    return found;
  }
}

/**
 * Indexes per segment list. A list is never changed in place (a new configuration or segment
 * update brings a new array), so an index stays true for as long as its list lives.
 */
const indexes = new WeakMap<readonly AppSegment[], SegmentDomains>();

/** The (shared, cached) domain index of a segment list. */
export function segmentDomains(segments: readonly AppSegment[]): SegmentDomains {
  let index = indexes.get(segments);
  if (!index) {
    index = new SegmentDomains(segments);
    indexes.set(segments, index);
  }
  return index;
}

/**
 * Segments whose domains match a normalised name, most specific first; ties keep configuration
 * order. An invalid domain anywhere in the list makes every match throw its InvalidDomainError,
 * as matching each domain in turn did (the edge's policy, the agent's routing).
 */
export function matchingSegments(segments: readonly AppSegment[], name: string): readonly SegmentCandidate[] {
  const index = segmentDomains(segments);
  if (index.error !== undefined) throw index.error;
  return index.candidates(name);
}
