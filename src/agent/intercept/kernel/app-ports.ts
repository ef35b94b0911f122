import { matchesDomain } from '../../../protocol/domain-match.js';
import type { AppSegment, L4Protocol, PortRange } from '../../../protocol/segments.js';

/**
 * The ports the agent lets through to an app: every range of every segment of the owning
 * tenant whose domains match the name. This is the union (what multimatch could allow at
 * best): the edge still applies first-match/multimatch and the access policy; the agent only
 * refuses at once what no segment could ever allow, instead of opening a doomed microtunnel.
 */
export function appPorts(segments: readonly AppSegment[], fqdn: string, proto: L4Protocol): PortRange[] {
  const out: PortRange[] = [];
  for (const s of segments) {
    if (!s.domains.some((d) => safeMatch(d, fqdn))) continue;
    out.push(...(proto === 'tcp' ? s.tcpPorts : s.udpPorts));
  }
  return out;
}

export function portIn(ranges: readonly PortRange[], port: number): boolean {
  return ranges.some((r) => port >= r.from && port <= r.to);
}

function safeMatch(pattern: string, fqdn: string): boolean {
  try {
    return matchesDomain(pattern, fqdn);
  } catch {
    return false; // a malformed pattern from the edge matches nothing
  }
}
