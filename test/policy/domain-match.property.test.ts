import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  matchesDomain,
  normalizeName,
  normalizePattern,
  specificity,
  tryNormalizeName,
} from '../../src/protocol/domain-match.js';

// A small fixed pool makes shared suffixes (the interesting case) frequent; the regex arm
// adds arbitrary valid labels, upper case included, so case folding is exercised too.
const label = fc.oneof(
  fc.constantFrom('a', 'b', 'corp', 'xn--bcher-kva', 'a-b', '0'),
  fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/),
);
const labels = fc.array(label, { minLength: 1, maxLength: 5 });
const render = (ls: readonly string[], dot: boolean): string => ls.join('.') + (dot ? '.' : '');

interface PatternModel {
  wildcard: boolean;
  labels: string[];
}
const pattern = fc.record({ wildcard: fc.boolean(), labels });
const patternText = (p: PatternModel, dot: boolean): string => (p.wildcard ? '*.' : '') + render(p.labels, dot);

/** Reference model: compare label lists from the right, case-insensitively. */
function model(p: PatternModel, name: readonly string[]): boolean {
  const pl = p.labels.map((l) => l.toLowerCase());
  const nl = name.map((l) => l.toLowerCase());
  if (!p.wildcard) return pl.length === nl.length && pl.every((l, i) => l === nl[i]);
  if (nl.length <= pl.length) return false;
  const tail = nl.slice(nl.length - pl.length);
  return pl.every((l, i) => l === tail[i]);
}

describe('matchesDomain vs label-suffix reference model', () => {
  it('agrees on independent random patterns and names', () => {
    fc.assert(
      fc.property(pattern, labels, fc.boolean(), fc.boolean(), (p, name, pdot, ndot) => {
        expect(matchesDomain(patternText(p, pdot), render(name, ndot))).toBe(model(p, name));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees on names built below the pattern suffix (mostly positive cases)', () => {
    fc.assert(
      fc.property(pattern, fc.array(label, { maxLength: 3 }), fc.boolean(), (p, prefix, ndot) => {
        const name = [...prefix, ...p.labels.map((l) => (ndot ? l.toUpperCase() : l))];
        const got = matchesDomain(patternText(p, false), render(name, ndot));
        expect(got).toBe(model(p, name));
        // Spelled out: a wildcard matches iff at least one label was added; exact iff none.
        expect(got).toBe(p.wildcard ? prefix.length > 0 : prefix.length === 0);
      }),
    );
  });

  it('a wildcard never matches its own suffix', () => {
    fc.assert(
      fc.property(labels, fc.boolean(), (suffix, dot) => {
        expect(matchesDomain(`*.${render(suffix, false)}`, render(suffix, dot))).toBe(false);
      }),
    );
  });

  it('specificity ranks co-matching patterns: exact first, then longer suffix', () => {
    fc.assert(
      fc.property(labels, fc.nat(), fc.nat(), (name, i, j) => {
        // Every suffix wildcard of `name` plus `name` itself matches `name`.
        const wild = (k: number): string => `*.${name.slice(k + 1).join('.')}`;
        if (name.length >= 2) {
          const a = i % (name.length - 1);
          const b = j % (name.length - 1);
          // Smaller k = longer suffix = more labels.
          expect(Math.sign(specificity(wild(a)) - specificity(wild(b)))).toBe(Math.sign(b - a));
          expect(specificity(name.join('.'))).toBeGreaterThan(specificity(wild(a)));
        }
      }),
    );
  });
});

describe('normalisation', () => {
  it('normalizeName is idempotent and yields lower case without a trailing dot', () => {
    fc.assert(
      fc.property(labels, fc.boolean(), (ls, dot) => {
        const once = normalizeName(render(ls, dot));
        expect(normalizeName(once)).toBe(once);
        expect(once).toBe(once.toLowerCase());
        expect(once.endsWith('.')).toBe(false);
      }),
    );
  });

  it('normalizePattern is idempotent', () => {
    fc.assert(
      fc.property(pattern, fc.boolean(), (p, dot) => {
        const once = normalizePattern(patternText(p, dot));
        expect(normalizePattern(once)).toBe(once);
      }),
    );
  });

  it('on arbitrary strings normalisation either rejects or is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const once = tryNormalizeName(s);
        if (once !== null) expect(tryNormalizeName(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });
});
