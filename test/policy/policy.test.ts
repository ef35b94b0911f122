import { describe, expect, it } from 'vitest';
import { decide, evaluateAccess, matchSegments, type AccessContext } from '../../src/edge/broker/policy.js';
import { TenantPolicy, type AccessRule, type MatchMode } from '../../src/edge/broker/policy-schema.js';
import {
  InvalidDomainError,
  compareSpecificity,
  matchesDomain,
  normalizeName,
  normalizePattern,
  portAllowed,
} from '../../src/protocol/domain-match.js';
import { AppSegment, type L4Protocol } from '../../src/protocol/segments.js';

type Ports = Array<number | [number, number]>;
const ranges = (ps: Ports) => ps.map((p) => (typeof p === 'number' ? { from: p, to: p } : { from: p[0], to: p[1] }));
function seg(id: string, domains: string[], tcp: Ports, udp: Ports = [], multimatch = false): AppSegment {
  return AppSegment.parse({ id, name: id, domains, tcpPorts: ranges(tcp), udpPorts: ranges(udp), multimatch });
}

describe('matchesDomain', () => {
  it.each([
    ['app.corp.example', 'app.corp.example', true],
    ['app.corp.example', 'APP.Corp.Example.', true],
    ['app.corp.example', 'x.app.corp.example', false],
    ['*.corp.example', 'app.corp.example', true],
    ['*.corp.example', 'a.b.c.corp.example', true],
    ['*.corp.example', 'corp.example', false],
    ['*.corp.example', 'corp.example.', false],
    ['*.corp.example', 'evilcorp.example', false],
    ['*.Corp.Example.', 'A.CORP.example.', true],
    ['*.corp.example', '_ldap._tcp.corp.example', true],
  ])('%s vs %s → %s', (pattern, name, expected) => {
    expect(matchesDomain(pattern, name)).toBe(expected);
  });
});

describe('normalisation', () => {
  it.each([
    ['App.Corp.Example.', 'app.corp.example'],
    ['single', 'single'],
    ['_ldap._TCP.corp.example', '_ldap._tcp.corp.example'],
  ])('normalizeName(%s) = %s', (input, out) => expect(normalizeName(input)).toBe(out));

  it.each(['', '.', 'a..', 'a..b', '.a', '-a.b', 'a-.b', 'a b.c', 'bücher.de', '*.a.b', `${'x'.repeat(64)}.c`, `${'a.'.repeat(127)}ab`])(
    'normalizeName rejects %j',
    (input) => expect(() => normalizeName(input)).toThrow(InvalidDomainError),
  );

  it.each(['*', '*.', 'a.*.b', '**.a', '*a.b', '_x.corp'])('normalizePattern rejects %j', (input) => {
    expect(() => normalizePattern(input)).toThrow(/invalid domain name/);
  });

  it('orders patterns most specific first', () => {
    const sorted = ['*.example', '*.corp.example', 'x.example', '*.eu.corp.example'].sort(compareSpecificity);
    expect(sorted).toEqual(['x.example', '*.eu.corp.example', '*.corp.example', '*.example']);
  });
});

describe('portAllowed', () => {
  const s = seg('s', ['a.example'], [443, [8000, 8100]], [53]);
  it.each<[L4Protocol, number, boolean]>([
    ['tcp', 443, true],
    ['udp', 443, false],
    ['udp', 53, true],
    ['tcp', 53, false],
    ['tcp', 8000, true],
    ['tcp', 8100, true],
    ['tcp', 8101, false],
    ['tcp', 0, false],
    ['tcp', 65536, false],
    ['tcp', 443.5, false],
  ])('%s/%d → %s', (proto, port, expected) => expect(portAllowed(s, proto, port)).toBe(expected));
});

// A specific app inside a wildcard segment, for the seed-003 port rules.
const specific = (mm: boolean) => seg('specific', ['app.corp.example'], [443], [], mm);
const wild = (mm: boolean) => seg('wild', ['*.corp.example'], [443, 8443], [53], mm);
// Three levels for the multimatch stop rule.
const levels = [
  seg('db', ['db.eu.corp.example'], [5432], [], true),
  seg('eu', ['*.eu.corp.example'], [5432, 22], [], false),
  seg('corp', ['*.corp.example'], [22, 5432, 3389], [], true),
];

type Expect = { ok: true; segment: string; matched: string[] } | { ok: false; reason: string; segmentId: string | null };
const cases: Array<[string, AppSegment[], MatchMode, string, L4Protocol, number, Expect]> = [
  ['first-match: specific entry has port', [specific(false), wild(false)], 'first-match', 'app.corp.example', 'tcp', 443, { ok: true, segment: 'specific', matched: ['specific'] }],
  ['first-match: port only in wildcard → drop', [specific(false), wild(false)], 'first-match', 'app.corp.example', 'tcp', 8443, { ok: false, reason: 'port-not-in-segment', segmentId: 'specific' }],
  ['first-match ignores per-segment multimatch flags', [specific(true), wild(true)], 'first-match', 'app.corp.example', 'tcp', 8443, { ok: false, reason: 'port-not-in-segment', segmentId: 'specific' }],
  ['first-match: order in config does not matter', [wild(false), specific(false)], 'first-match', 'app.corp.example', 'tcp', 443, { ok: true, segment: 'specific', matched: ['specific'] }],
  ['first-match: other host falls to wildcard', [specific(false), wild(false)], 'first-match', 'other.corp.example', 'tcp', 8443, { ok: true, segment: 'wild', matched: ['wild'] }],
  ['wildcard matches deep names', [wild(false)], 'first-match', 'a.b.c.corp.example', 'tcp', 443, { ok: true, segment: 'wild', matched: ['wild'] }],
  ['wildcard does not match apex', [wild(false)], 'first-match', 'corp.example', 'tcp', 443, { ok: false, reason: 'no-segment', segmentId: null }],
  ['unknown host', [specific(false), wild(false)], 'multimatch', 'www.example.org', 'tcp', 443, { ok: false, reason: 'no-segment', segmentId: null }],
  ['invalid host', [wild(false)], 'first-match', 'bad..corp.example', 'tcp', 443, { ok: false, reason: 'no-segment', segmentId: null }],
  ['case-insensitive with trailing dot', [specific(false), wild(false)], 'first-match', 'APP.Corp.EXAMPLE.', 'tcp', 443, { ok: true, segment: 'specific', matched: ['specific'] }],
  ['UDP port in UDP list', [specific(false), wild(false)], 'first-match', 'dns.corp.example', 'udp', 53, { ok: true, segment: 'wild', matched: ['wild'] }],
  ['UDP port number is not a TCP port', [specific(false), wild(false)], 'first-match', 'dns.corp.example', 'tcp', 53, { ok: false, reason: 'port-not-in-segment', segmentId: 'wild' }],
  ['TCP port number is not a UDP port', [wild(false)], 'first-match', 'x.corp.example', 'udp', 443, { ok: false, reason: 'port-not-in-segment', segmentId: 'wild' }],
  ['same name, different ports: tier is eligible', [seg('web', ['h.corp.example'], [443]), seg('ssh', ['h.corp.example'], [22])], 'first-match', 'h.corp.example', 'tcp', 22, { ok: true, segment: 'ssh', matched: ['ssh'] }],
  ['segment uses its most specific domain', [seg('multi', ['*.corp.example', 'app.corp.example'], [8443]), specific(false)], 'first-match', 'app.corp.example', 'tcp', 8443, { ok: true, segment: 'multi', matched: ['multi'] }],
  ['multimatch: port missing in specific → use wildcard', [specific(true), wild(true)], 'multimatch', 'app.corp.example', 'tcp', 8443, { ok: true, segment: 'wild', matched: ['wild'] }],
  ['multimatch: both collected, most specific decides', [wild(true), specific(true)], 'multimatch', 'app.corp.example', 'tcp', 443, { ok: true, segment: 'specific', matched: ['specific', 'wild'] }],
  ['multimatch: disabled top entry with port is used alone', [specific(false), wild(true)], 'multimatch', 'app.corp.example', 'tcp', 443, { ok: true, segment: 'specific', matched: ['specific'] }],
  ['multimatch: disabled top entry without port stops the walk', [specific(false), wild(true)], 'multimatch', 'app.corp.example', 'tcp', 8443, { ok: false, reason: 'port-not-in-segment', segmentId: 'specific' }],
  ['multimatch stop: something collected → disabled entry excluded', levels, 'multimatch', 'db.eu.corp.example', 'tcp', 5432, { ok: true, segment: 'db', matched: ['db'] }],
  ['multimatch stop: nothing collected → disabled entry used', levels, 'multimatch', 'db.eu.corp.example', 'tcp', 22, { ok: true, segment: 'eu', matched: ['eu'] }],
  ['multimatch stop: less specific beyond stop never reached', levels, 'multimatch', 'db.eu.corp.example', 'tcp', 3389, { ok: false, reason: 'port-not-in-segment', segmentId: 'db' }],
  ['multimatch: no disabled entry in path', levels, 'multimatch', 'x.corp.example', 'tcp', 22, { ok: true, segment: 'corp', matched: ['corp'] }],
  ['first-match on the three levels: db lacks 22 → drop', levels, 'first-match', 'db.eu.corp.example', 'tcp', 22, { ok: false, reason: 'port-not-in-segment', segmentId: 'db' }],
];

describe('matchSegments', () => {
  it.each(cases)('%s', (_title, segments, mode, fqdn, proto, port, expected) => {
    const r = matchSegments(segments, fqdn, proto, port, mode);
    if (r.ok) {
      expect({ ok: true, segment: r.segment.id, matched: r.matched.map((s) => s.id) }).toEqual(expected);
    } else {
      expect({ ok: false, reason: r.reason, segmentId: r.segmentId }).toEqual(expected);
      expect(r.detail).not.toBe('');
    }
  });

  it('defaults to first-match and explains a refused fallback', () => {
    const r = matchSegments([specific(true), wild(true)], 'app.corp.example', 'tcp', 8443);
    expect(r).toMatchObject({ ok: false, reason: 'port-not-in-segment', candidates: ['specific', 'wild'] });
    expect(!r.ok && r.detail).toMatch(/segment "wild".*does not fall back/);
  });
});

const rules: AccessRule[] = [
  { id: 'deny-contractors-hr', name: 'no contractors on HR', action: 'deny', segments: ['hr'], groups: ['contractors'] },
  { id: 'allow-hr', name: 'HR staff', action: 'allow', segments: ['hr'], groups: ['hr-staff'] },
  { id: 'allow-alice', name: 'Alice anywhere', action: 'allow', users: ['alice@corp.example'] },
  { id: 'allow-eng', name: 'engineers to eng apps', action: 'allow', segmentGroups: ['eng'], groups: ['engineers'] },
];
const ctx = (user: string, groups: string[], segmentId: string, segmentGroup?: string): AccessContext => ({ user, groups, segmentId, segmentGroup });

describe('evaluateAccess', () => {
  it.each<[string, AccessRule[], AccessContext, 'allow' | 'deny', string | null, string]>([
    ['allowed by SAML group', rules, ctx('bob@corp.example', ['hr-staff'], 'hr'), 'allow', 'allow-hr', 'allowed-by-rule'],
    ['deny rule before allow wins', rules, ctx('bob@corp.example', ['hr-staff', 'contractors'], 'hr'), 'deny', 'deny-contractors-hr', 'denied-by-rule'],
    ['allow first when reordered', [rules[1]!, rules[0]!], ctx('bob@corp.example', ['hr-staff', 'contractors'], 'hr'), 'allow', 'allow-hr', 'allowed-by-rule'],
    ['by user, case-insensitive, any segment', rules, ctx('ALICE@Corp.Example', [], 'git'), 'allow', 'allow-alice', 'allowed-by-rule'],
    ['groups are case-sensitive', rules, ctx('bob@corp.example', ['HR-Staff'], 'hr'), 'deny', null, 'no-rule-matched'],
    ['by segment group', rules, ctx('carol@corp.example', ['engineers'], 'git', 'eng'), 'allow', 'allow-eng', 'allowed-by-rule'],
    ['segment-group rule needs a group', rules, ctx('carol@corp.example', ['engineers'], 'git'), 'deny', null, 'no-rule-matched'],
    ['all conditions must hold', rules, ctx('carol@corp.example', ['hr-staff'], 'git', 'eng'), 'deny', null, 'no-rule-matched'],
    ['default deny', rules, ctx('dave@corp.example', [], 'hr'), 'deny', null, 'no-rule-matched'],
    ['no rules → deny', [], ctx('alice@corp.example', [], 'hr'), 'deny', null, 'no-rule-matched'],
    ['rule without conditions matches all', [{ id: 'all', name: 'all', action: 'allow' }], ctx('x', [], 'y'), 'allow', 'all', 'allowed-by-rule'],
    ['empty list matches nothing', [{ id: 'e', name: 'e', action: 'allow', users: [] }], ctx('x', [], 'y'), 'deny', null, 'no-rule-matched'],
  ])('%s', (_t, rs, c, action, ruleId, reason) => {
    expect(evaluateAccess(rs, c)).toMatchObject({ action, ruleId, reason });
  });
});

describe('decide', () => {
  const segments = [specific(true), wild(true), seg('hr', ['hr.corp.example'], [443])];
  const groupOf = (id: string) => (id === 'wild' ? 'eng' : undefined);
  const policy = (matchMode: MatchMode) => TenantPolicy.parse({ matchMode, rules });
  const req = (fqdn: string, port: number, user: string, groups: string[]) => ({ fqdn, proto: 'tcp' as const, port, user, groups });

  it.each<[string, MatchMode, ReturnType<typeof req>, boolean, string, string | null]>([
    ['allowed', 'first-match', req('hr.corp.example', 443, 'bob@corp.example', ['hr-staff']), true, 'allowed-by-rule', 'allow-hr'],
    ['no segment', 'first-match', req('hr.example.org', 443, 'alice@corp.example', []), false, 'no-segment', null],
    ['port not in segment', 'first-match', req('app.corp.example', 8443, 'alice@corp.example', []), false, 'port-not-in-segment', null],
    ['denied by rule', 'first-match', req('hr.corp.example', 443, 'bob@corp.example', ['contractors']), false, 'denied-by-rule', 'deny-contractors-hr'],
    ['no rule matched', 'first-match', req('app.corp.example', 443, 'bob@corp.example', ['engineers']), false, 'no-rule-matched', null],
    ['multimatch: chosen wildcard segment decides (group eng)', 'multimatch', req('app.corp.example', 8443, 'bob@corp.example', ['engineers']), true, 'allowed-by-rule', 'allow-eng'],
  ])('%s', (_t, mode, r, allow, reason, ruleId) => {
    expect(decide(policy(mode), segments, r, groupOf)).toMatchObject({ allow, reason, ruleId });
  });
});

describe('policy schema', () => {
  it('defaults to first-match with no rules', () => {
    expect(TenantPolicy.parse({})).toEqual({ matchMode: 'first-match', rules: [] });
  });
  it.each([
    ['unknown condition key', { rules: [{ id: 'r', name: 'r', action: 'allow', group: ['x'] }] }],
    ['empty condition list', { rules: [{ id: 'r', name: 'r', action: 'allow', users: [] }] }],
    ['bad action', { rules: [{ id: 'r', name: 'r', action: 'permit' }] }],
    ['bad mode', { matchMode: 'best-match', rules: [] }],
    ['duplicate rule id', { rules: [{ id: 'r', name: 'a', action: 'allow' }, { id: 'r', name: 'b', action: 'deny' }] }],
  ])('rejects %s', (_t, input) => {
    expect(TenantPolicy.safeParse(input).success).toBe(false);
  });
});
