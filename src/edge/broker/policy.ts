import { portAllowed, tryNormalizeName } from '../../protocol/domain-match.js';
import { matchingSegments, type SegmentCandidate } from '../../protocol/segment-domains.js';
import type { AppSegment, L4Protocol } from '../../protocol/segments.js';
import type { AccessRule, MatchMode, TenantPolicy } from './policy-schema.js';

/**
 * Application matching and access policy (seed 003, "Access policy"). Pure functions: the
 * broker calls decide() for every microtunnel open and logs the returned reason verbatim.
 */

export type { AccessAction, AccessRule, MatchMode, TenantPolicy } from './policy-schema.js';

export type SegmentMatch =
  | { ok: true; segment: AppSegment; matched: AppSegment[]; domain: string }
  | {
      ok: false;
      reason: 'no-segment' | 'port-not-in-segment';
      /** Segment whose port list refused the request, when there was one. */
      segmentId: string | null;
      /** Ids of every segment whose domains matched the name, most specific first. */
      candidates: string[];
      detail: string;
    };

/** The segment with the most specific domain matching a normalised name (the first listed on a tie). */
export function owningSegment(segments: readonly AppSegment[], name: string): AppSegment | undefined {
  return matchingSegments(segments, name)[0]?.segment;
}

const label = (c: SegmentCandidate): string => `segment "${c.segment.id}" (${c.domain})`;

function refusedPort(cands: readonly SegmentCandidate[], refusing: SegmentCandidate, proto: L4Protocol, port: number, why: string): SegmentMatch {
  return {
    ok: false,
    reason: 'port-not-in-segment',
    segmentId: refusing.segment.id,
    candidates: cands.map((c) => c.segment.id),
    detail: `${proto}/${port} not in ${label(refusing)}${why}`,
  };
}

function firstMatch(cands: readonly SegmentCandidate[], proto: L4Protocol, port: number): SegmentMatch {
  // Several segments may list the same name for different ports (a supported ZPA setup), so
  // the whole most-specific tier is eligible; anything less specific never is.
  const top = cands[0]!;
  const tier = cands.filter((c) => c.rank === top.rank);
  const hit = tier.find((c) => portAllowed(c.segment, proto, port));
  if (hit) return { ok: true, segment: hit.segment, matched: [hit.segment], domain: hit.domain };
  const fallback = cands.find((c) => c.rank < top.rank && portAllowed(c.segment, proto, port));
  const why = fallback ? `; less specific ${label(fallback)} has it but first-match does not fall back` : '';
  return refusedPort(cands, top, proto, port, why);
}

function multimatch(cands: readonly SegmentCandidate[], proto: L4Protocol, port: number): SegmentMatch {
  const collected: SegmentCandidate[] = [];
  let stop: SegmentCandidate | null = null;
  for (const c of cands) {
    const allowed = portAllowed(c.segment, proto, port);
    if (c.segment.multimatch) {
      if (allowed) collected.push(c);
      continue;
    }
    // Seed 003: a multimatch-disabled segment ends the walk; it is used only if nothing
    // matched before it, otherwise it is excluded from the matched set.
    if (collected.length === 0 && allowed) collected.push(c);
    stop = c;
    break;
  }
  const chosen = collected[0];
  if (chosen) return { ok: true, segment: chosen.segment, matched: collected.map((c) => c.segment), domain: chosen.domain };
  const why = stop ? `; walk stopped at multimatch-disabled ${label(stop)}` : '';
  return refusedPort(cands, cands[0]!, proto, port, `${why} (no matched segment has the port)`);
}

/** Map a hostname + L4 port to application segment(s) under the tenant's match mode. */
export function matchSegments(
  segments: readonly AppSegment[],
  fqdn: string,
  proto: L4Protocol,
  port: number,
  mode: MatchMode = 'first-match',
): SegmentMatch {
  const name = tryNormalizeName(fqdn);
  if (name === null) {
    return { ok: false, reason: 'no-segment', segmentId: null, candidates: [], detail: `invalid hostname ${JSON.stringify(fqdn)}` };
  }
  const cands = matchingSegments(segments, name);
  if (cands.length === 0) {
    return { ok: false, reason: 'no-segment', segmentId: null, candidates: [], detail: `no segment domain matches "${name}"` };
  }
  return mode === 'multimatch' ? multimatch(cands, proto, port) : firstMatch(cands, proto, port);
}

export interface AccessContext {
  user: string;
  /** SAML groups from the user's assertion. */
  groups: readonly string[];
  segmentId: string;
  segmentGroup?: string | undefined;
}

export type AccessReason = 'allowed-by-rule' | 'denied-by-rule' | 'no-rule-matched';

/** Discriminated so that an allow always carries the id of the rule that granted it. */
export type AccessResult =
  | { action: 'allow'; ruleId: string; reason: 'allowed-by-rule'; detail: string }
  | { action: 'deny'; ruleId: string; reason: 'denied-by-rule'; detail: string }
  | { action: 'deny'; ruleId: null; reason: 'no-rule-matched'; detail: string };

/**
 * All present conditions must hold (absent = any). An empty list matches nothing (the schema
 * forbids it; unparsed input fails closed for allow rules).
 */
function ruleMatches(rule: AccessRule, ctx: AccessContext): boolean {
  if (rule.segments && !rule.segments.includes(ctx.segmentId)) return false;
  if (rule.segmentGroups && (ctx.segmentGroup === undefined || !rule.segmentGroups.includes(ctx.segmentGroup))) {
    return false;
  }
  // IdPs hand back UPNs/e-mails in whatever case the directory stores, so users compare folded.
  const user = ctx.user.toLowerCase();
  if (rule.users && !rule.users.some((u) => u.toLowerCase() === user)) return false;
  if (rule.groups && !rule.groups.some((g) => ctx.groups.includes(g))) return false;
  return true;
}

/** Ordered rules, first match wins, default deny. */
export function evaluateAccess(rules: readonly AccessRule[], ctx: AccessContext): AccessResult {
  const rule = rules.find((r) => ruleMatches(r, ctx));
  if (!rule) {
    return { action: 'deny', ruleId: null, reason: 'no-rule-matched', detail: `no rule matches segment "${ctx.segmentId}"` };
  }
  const detail = `rule "${rule.id}" (${rule.name}): ${rule.action}`;
  if (rule.action === 'allow') return { action: 'allow', ruleId: rule.id, reason: 'allowed-by-rule', detail };
  return { action: 'deny', ruleId: rule.id, reason: 'denied-by-rule', detail };
}

export interface AccessRequest {
  fqdn: string;
  proto: L4Protocol;
  port: number;
  user: string;
  groups: readonly string[];
}

export type DenyReason = 'no-segment' | 'port-not-in-segment' | 'denied-by-rule' | 'no-rule-matched';

export type Decision =
  | { allow: true; reason: 'allowed-by-rule'; segment: AppSegment; matched: AppSegment[]; ruleId: string; detail: string }
  | { allow: false; reason: DenyReason; segmentId: string | null; ruleId: string | null; detail: string };

/**
 * Whether a microtunnel open may proceed: segment match, then access rules on the chosen
 * segment (in multimatch mode the first collected segment decides).
 */
export function decide(
  policy: Pick<TenantPolicy, 'matchMode' | 'rules'>,
  segments: readonly AppSegment[],
  req: AccessRequest,
  segmentGroupOf?: (segmentId: string) => string | undefined,
): Decision {
  const m = matchSegments(segments, req.fqdn, req.proto, req.port, policy.matchMode);
  if (!m.ok) return { allow: false, reason: m.reason, segmentId: m.segmentId, ruleId: null, detail: m.detail };
  const segmentId = m.segment.id;
  const a = evaluateAccess(policy.rules, {
    user: req.user,
    groups: req.groups,
    segmentId,
    segmentGroup: segmentGroupOf?.(segmentId),
  });
  if (a.action === 'allow') {
    return { allow: true, reason: a.reason, segment: m.segment, matched: m.matched, ruleId: a.ruleId, detail: a.detail };
  }
  return { allow: false, reason: a.reason, segmentId, ruleId: a.ruleId, detail: a.detail };
}
