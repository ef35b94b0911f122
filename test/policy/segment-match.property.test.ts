import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchSegments, owningSegment } from '../../src/edge/broker/policy.js';
import { matchesDomain, specificity, tryNormalizeName } from '../../src/protocol/domain-match.js';
import type { AppSegment } from '../../src/protocol/segments.js';

// The edge matches names through an index of the segment domains (policy.ts); this is the
// definition it must agree with: every domain of every segment tried in turn, per segment its
// most specific matching domain (the first listed among equals), segments most specific first,
// ties in configuration order.
function reference(segments: readonly AppSegment[], name: string): Array<{ id: string; domain: string }> {
  const out: Array<{ segment: AppSegment; domain: string; rank: number }> = [];
  for (const segment of segments) {
    let best: { domain: string; rank: number } | null = null;
    for (const domain of segment.domains) {
      if (!matchesDomain(domain, name)) continue;
      const rank = specificity(domain);
      if (best === null || rank > best.rank) best = { domain, rank };
    }
    if (best) out.push({ segment, ...best });
  }
  return out.sort((a, b) => b.rank - a.rank).map((c) => ({ id: c.segment.id, domain: c.domain }));
}

// Few labels, so that names and patterns overlap often; case varies as users write it.
const label = fc.constantFrom('a', 'b', 'corp', 'App', 'app', 'x-1');
const fqdn = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const domain = fc.tuple(fc.boolean(), fqdn).map(([wild, name]) => (wild ? `*.${name}` : name));
const segments = fc.array(fc.array(domain, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }).map((lists) =>
  lists.map((domains, i): AppSegment => ({ id: `s${i}`, name: `S${i}`, domains, tcpPorts: [{ from: 1, to: 65535 }], udpPorts: [], multimatch: true, drEnabled: false })),
);

describe('segment matching at the edge', () => {
  it('finds the same segments, in the same order and with the same domain, as trying every domain', () => {
    fc.assert(
      fc.property(segments, fc.array(fqdn, { minLength: 1, maxLength: 5 }), (segs, names) => {
        // Several names against one list: the second and later use the index (and its memo) built by the first.
        for (const n of [...names, ...names]) {
          const name = tryNormalizeName(n);
          if (name === null) continue;
          const want = reference(segs, name);
          const got = matchSegments(segs, n, 'tcp', 443, 'multimatch');
          expect(owningSegment(segs, name)?.id).toBe(want[0]?.id);
          if (want.length === 0) {
            expect(got).toMatchObject({ ok: false, reason: 'no-segment' });
            continue;
          }
          // Every segment allows the port and takes part in multimatch, so the multimatch walk
          // collects every candidate; first-match answers with the first.
          const first = matchSegments(segs, n, 'tcp', 443, 'first-match');
          expect(first).toMatchObject({ ok: true, domain: want[0]?.domain });
          expect(first.ok && first.segment.id).toBe(want[0]?.id);
          expect(got.ok && got.matched.map((s) => s.id)).toEqual(want.map((c) => c.id));
        }
      }),
      { numRuns: 300 },
    );
  });
});
