import { tryNormalizeName } from '../../../protocol/domain-match.js';
import { segmentDomains, type SegmentCandidate } from '../../../protocol/segment-domains.js';
import type { AppSegment, L4Protocol, PortRange } from '../../../protocol/segments.js';

/**
 * The ranges worked out from a name's candidates, per protocol. Keyed by the candidates array,
 * which the domain index memoizes per segment list and name: asked for every intercepted
 * connection, copying and sorting them each time cost ~15 µs per connection.
 */
const rangesOf = new WeakMap<readonly SegmentCandidate[], Partial<Record<L4Protocol, readonly PortRange[]>>>();

/**
 * The ports the agent lets through to an app: every range of every segment of the owning
 * tenant whose domains match the name. This is the union (what multimatch could allow at
 * best): the edge still applies first-match/multimatch and the access policy; the agent only
 * refuses at once what no segment could ever allow, instead of opening a doomed microtunnel.
 * Segments are found through the list's domain index (segment-domains.ts); a malformed
 * pattern from the edge matches nothing.
 */
export function appPorts(segments: readonly AppSegment[], fqdn: string, proto: L4Protocol): readonly PortRange[] {
  const name = tryNormalizeName(fqdn);
  if (name === null) return [];
  const candidates = segmentDomains(segments).candidates(name);
  let ranges = rangesOf.get(candidates);
  if (!ranges) rangesOf.set(candidates, (ranges = {}));
  // In configuration order, as the ranges are listed.
  return (ranges[proto] ??= [...candidates].sort((a, b) => a.at - b.at).flatMap((c) => (proto === 'tcp' ? c.segment.tcpPorts : c.segment.udpPorts)));
}

export function portIn(ranges: readonly PortRange[], port: number): boolean {
  return ranges.some((r) => port >= r.from && port <= r.to);
}
