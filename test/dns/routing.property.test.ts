import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { routeName, type RoutableTenant } from '../../src/agent/tenants/tenant-router.js';
import {
  compareSpecificity,
  InvalidDomainError,
  matchesDomain,
  normalizeName,
  normalizePattern,
  tryNormalizeName,
} from '../../src/protocol/domain-match.js';
import type { AppSegment } from '../../src/protocol/segments.js';

// The agent normalises and routes every query name, so both moved off per-label regexes and
// per-pattern scans (a one-pass check, a per-segment-list index). These are the previous
// implementations, kept here as references the new ones must agree with exactly.

const NAME_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const PATTERN_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function refCanonical(input: string, label: RegExp): string {
  let s = input.toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0) throw new InvalidDomainError(input, 'empty name');
  if (s.length > 253) throw new InvalidDomainError(input, 'longer than 253 characters');
  if (/[^\x20-\x7e]/.test(s)) throw new InvalidDomainError(input, 'non-ASCII or control character; use the punycode (xn--) form');
  for (const l of s.split('.')) {
    if (l.length === 0) throw new InvalidDomainError(input, 'empty label');
    if (!label.test(l)) throw new InvalidDomainError(input, `bad label ${JSON.stringify(l)}`);
  }
  return s;
}

function refPattern(pattern: string): string {
  const lower = pattern.toLowerCase();
  if (lower.startsWith('*.')) return `*.${refCanonical(lower.slice(2), PATTERN_LABEL)}`;
  if (lower.includes('*')) throw new InvalidDomainError(pattern, 'a wildcard is only allowed as a leading "*." label');
  return refCanonical(lower, PATTERN_LABEL);
}

function refRoute<T extends RoutableTenant>(tenants: readonly T[], name: string): { tenant: T; pattern: string } | undefined {
  let fqdn: string;
  try {
    fqdn = refCanonical(name, NAME_LABEL);
  } catch {
    return undefined;
  }
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

/** The outcome of f: its value, or the message of what it threw. */
function outcome<T>(f: () => T): { ok: T } | { err: string } {
  try {
    return { ok: f() };
  } catch (e) {
    return { err: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

// Characters that matter to the rules, upper case, and a few that toLowerCase treats oddly:
// KELVIN SIGN lower-cases to ASCII "k", DOTTED CAPITAL I to two characters.
const ch = fc.constantFrom(...'abzAZ09-_.*'.split(''), ' ', '\u212a', '\u0130', '\u00e9', '\u0000', '\u007f', '/');
const text = fc.oneof(
  fc.array(ch, { maxLength: 20 }).map((cs) => cs.join('')),
  fc.array(fc.stringMatching(/^[a-zA-Z0-9_-]{1,8}$/), { minLength: 1, maxLength: 5 }).map((ls) => ls.join('.')),
  fc.tuple(fc.integer({ min: 60, max: 66 }), fc.constantFrom('', '.x', '-', '.')).map(([n, tail]) => 'a'.repeat(n) + tail),
  fc.tuple(fc.integer({ min: 120, max: 130 }), fc.boolean()).map(([n, dot]) => Array.from({ length: n }, () => 'a').join('.') + (dot ? '.' : '')),
);

describe('name normalisation: one pass agrees with the regex rules', () => {
  it('normalizeName, tryNormalizeName and normalizePattern: same result, same error', () => {
    fc.assert(
      fc.property(text, fc.boolean(), (s, star) => {
        const input = star ? `*.${s}` : s;
        expect(outcome(() => normalizeName(input))).toEqual(outcome(() => refCanonical(input, NAME_LABEL)));
        const ref = outcome(() => refCanonical(input, NAME_LABEL));
        expect(tryNormalizeName(input)).toBe('ok' in ref ? ref.ok : null);
        expect(outcome(() => normalizePattern(input))).toEqual(outcome(() => refPattern(input)));
      }),
      { numRuns: 20_000 },
    );
  });

  it('the odd cases, spelled out', () => {
    expect(normalizeName('\u212aey.Example.')).toBe('key.example');
    expect(tryNormalizeName('a..')).toBeNull();
    expect(tryNormalizeName('-a.b')).toBeNull();
    expect(tryNormalizeName('a-.b')).toBeNull();
    expect(normalizeName('_ldap._TCP.b')).toBe('_ldap._tcp.b');
    expect(() => normalizePattern('_ldap.b')).toThrow('bad label "_ldap"');
    expect(tryNormalizeName(`${'a'.repeat(63)}.b`)).toBe(`${'a'.repeat(63)}.b`);
    expect(tryNormalizeName(`${'a'.repeat(64)}.b`)).toBeNull();
  });
});

describe('routing: the per-segment-list index picks what the linear scan picked', () => {
  const labelPool = ['a', 'b', 'corp', 'x-y', 'B', 'Corp'];
  const name = fc.array(fc.constantFrom(...labelPool), { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
  const pattern = fc.oneof(
    { weight: 10, arbitrary: fc.tuple(fc.boolean(), name).map(([w, n]) => (w ? `*.${n}` : n)) },
    // Rare invalid patterns: routing must throw the same error as before.
    { weight: 1, arbitrary: fc.constantFrom('bad..pattern', 'a.*.b', '_x.corp') },
  );
  const segment = fc
    .array(pattern, { minLength: 1, maxLength: 3 })
    .map((domains): AppSegment => ({ id: 's', name: 's', domains, tcpPorts: [], udpPorts: [], multimatch: false, drEnabled: false }));
  const tenants = fc
    .array(fc.array(segment, { maxLength: 3 }), { minLength: 1, maxLength: 3 })
    .map((ts) => ts.map((segments, i) => ({ id: `t${i}`, segments })));
  const query = fc.oneof(name, name.map((n) => `${n}.`), fc.constantFrom('', '.', 'a..b', 'x.corp.b.a'));

  it('same tenant and pattern (or the same error) for every name, over and over with the same lists', () => {
    fc.assert(
      fc.property(tenants, fc.array(query, { minLength: 1, maxLength: 8 }), (ts, names) => {
        for (const n of [...names, ...names]) {
          const got = outcome(() => routeName(ts, n));
          const want = outcome(() => refRoute(ts, n));
          expect(got).toEqual(want);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it('a new segment list is a new index: an update is seen at once', () => {
    const t: RoutableTenant = { id: 't', segments: [{ id: 's', name: 's', domains: ['*.corp'], tcpPorts: [], udpPorts: [], multimatch: false, drEnabled: false }] };
    expect(routeName([t], 'a.corp')?.pattern).toBe('*.corp');
    t.segments = [{ id: 's', name: 's', domains: ['a.corp'], tcpPorts: [], udpPorts: [], multimatch: false, drEnabled: false }];
    expect(routeName([t], 'a.corp')?.pattern).toBe('a.corp');
    expect(routeName([t], 'b.corp')).toBeUndefined();
  });
});
