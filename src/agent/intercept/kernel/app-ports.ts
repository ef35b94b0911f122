import { tryNormalizeName } from '../../../protocol/domain-match.js';
import { segmentDomains } from '../../../protocol/segment-domains.js';
import type { AppSegment, L4Protocol, PortRange } from '../../../protocol/segments.js';

/**
 * The ports the agent lets through to an app: every range of every segment of the owning
 * tenant whose domains match the name. This is the union (what multimatch could allow at
 * best): the edge still applies first-match/multimatch and the access policy; the agent only
 * refuses at once what no segment could ever allow, instead of opening a doomed microtunnel.
 * Segments are found through the list's domain index (segment-domains.ts); a malformed
 * pattern from the edge matches nothing.
 */
export function appPorts(segments: readonly AppSegment[], fqdn: string, proto: L4Protocol): PortRange[] {
  const name = tryNormalizeName(fqdn);
  if (name === null) return [];
  // In configuration order, as the ranges are listed.
  return [...segmentDomains(segments).candidates(name)]
    .sort((a, b) => a.at - b.at)
    .flatMap((c) => (proto === 'tcp' ? c.segment.tcpPorts : c.segment.udpPorts));
}

export function portIn(ranges: readonly PortRange[], port: number): boolean {
  return ranges.some((r) => port >= r.from && port <= r.to);
}
