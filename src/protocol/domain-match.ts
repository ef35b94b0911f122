import type { AppSegment, L4Protocol } from './segments.js';

/**
 * Hostname normalisation and application-segment domain matching, shared by the agent
 * (which decides what to intercept) and the edge broker (which enforces policy). Both sides
 * must agree bit for bit, otherwise the agent would tunnel names the broker then refuses.
 */

/** Thrown for a name or pattern that is not a usable DNS name; `input` is the raw value. */
export class InvalidDomainError extends Error {
  constructor(
    readonly input: string,
    readonly why: string,
  ) {
    super(`invalid domain name ${JSON.stringify(input)}: ${why}`);
    this.name = 'InvalidDomainError';
  }
}

// Query names may carry underscores (SRV/service labels such as "_ldap._tcp"), so names the
// agent intercepts accept them; segment patterns follow the stricter DomainPattern schema.
const NAME_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const PATTERN_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

/** The reference implementation: the rules as regular expressions, and the exact error. */
function canonicalSlow(input: string, label: RegExp): string {
  // Exactly one trailing dot is the absolute-name marker; "a.." must stay invalid.
  let s = input.toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0) throw new InvalidDomainError(input, 'empty name');
  if (s.length > MAX_NAME_LENGTH) throw new InvalidDomainError(input, `longer than ${MAX_NAME_LENGTH} characters`);
  if (/[^\x20-\x7e]/.test(s)) {
    throw new InvalidDomainError(input, 'non-ASCII or control character; use the punycode (xn--) form');
  }
  for (const l of s.split('.')) {
    if (l.length === 0) throw new InvalidDomainError(input, 'empty label');
    if (!label.test(l)) throw new InvalidDomainError(input, `bad label ${JSON.stringify(l)}`);
  }
  return s;
}

/**
 * The same rules in one pass over the characters, for the DNS server and the router, which
 * normalise every query name: the canonical name when `input` is plain ASCII and valid,
 * undefined otherwise (canonicalSlow then decides, and words the error). Non-ASCII input
 * always goes the slow way, since toLowerCase() maps a few non-ASCII characters to ASCII
 * (KELVIN SIGN to "k") and the result must not depend on which way was taken.
 */
function canonicalFast(input: string, underscore: boolean): string | undefined {
  let n = input.length;
  if (n > 0 && input.charCodeAt(n - 1) === 0x2e) n -= 1;
  if (n === 0 || n > MAX_NAME_LENGTH) return undefined;
  let upper = false;
  let labelLen = 0;
  let prev = 0x2e;
  for (let i = 0; i < n; i++) {
    let c = input.charCodeAt(i);
    if (c === 0x2e) {
      // An empty label, or one ending in "-".
      if (labelLen === 0 || prev === 0x2d) return undefined;
      labelLen = 0;
      prev = c;
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) {
      upper = true;
      c += 0x20;
    } else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c === 0x5f && underscore) || c === 0x2d)) {
      return undefined;
    }
    // A label starts with a letter, digit (or "_"), never "-", and has at most 63 characters.
    if ((c === 0x2d && labelLen === 0) || ++labelLen > MAX_LABEL_LENGTH) return undefined;
    prev = c;
  }
  if (labelLen === 0 || prev === 0x2d) return undefined;
  const s = n === input.length ? input : input.slice(0, n);
  return upper ? s.toLowerCase() : s;
}

function canonical(input: string, pattern: boolean): string {
  return canonicalFast(input, !pattern) ?? canonicalSlow(input, pattern ? PATTERN_LABEL : NAME_LABEL);
}

/** Lower-case, strip one trailing dot, validate. Throws InvalidDomainError. Idempotent. */
export function normalizeName(name: string): string {
  return canonical(name, false);
}

/** normalizeName that returns null instead of throwing: for names received from the network. */
export function tryNormalizeName(name: string): string | null {
  const fast = canonicalFast(name, true);
  if (fast !== undefined) return fast;
  try {
    return canonicalSlow(name, NAME_LABEL);
  } catch (e) {
    if (e instanceof InvalidDomainError) return null;
    throw e;
  }
}

/** Normalise a segment domain: an exact FQDN or "*." + FQDN. Throws InvalidDomainError. */
export function normalizePattern(pattern: string): string {
  const lower = pattern.toLowerCase();
  if (lower.startsWith('*.')) return `*.${canonical(lower.slice(2), true)}`;
  if (lower.includes('*')) throw new InvalidDomainError(pattern, 'a wildcard is only allowed as a leading "*." label');
  return canonical(lower, true);
}

export function isWildcard(pattern: string): boolean {
  return pattern.startsWith('*.');
}

/**
 * Exact patterns match only the same name. "*.suffix" matches any name with at least one
 * extra label below the suffix, at any depth (ZPA wildcards cover all levels, unlike TLS
 * certificate wildcards), but never the suffix itself.
 * Throws InvalidDomainError when either argument is invalid.
 */
export function matchesDomain(pattern: string, fqdn: string): boolean {
  return matchesNormalized(normalizePattern(pattern), normalizeName(fqdn));
}

/** matchesDomain for a pattern and a name normalised already (normalizePattern, normalizeName). */
function matchesNormalized(pattern: string, name: string): boolean {
  if (!isWildcard(pattern)) return pattern === name;
  // The name is validated (no empty labels), so a "."-prefixed suffix guarantees an extra label.
  return name.endsWith(pattern.slice(1));
}

// Larger than any label count (a 253-char name has at most 127 labels) so that every exact
// pattern outranks every wildcard, whatever their lengths.
const EXACT_RANK = 1000;

/**
 * Rank of a pattern: higher is more specific. Exact names beat wildcards; among wildcards
 * (and among exact names) more labels beat fewer. Two patterns that both match one name and
 * have equal rank are identical, so ranking candidates for a single name is a total order.
 */
export function specificity(pattern: string): number {
  const p = normalizePattern(pattern);
  const labels = labelCount(p);
  return isWildcard(p) ? labels - 1 : EXACT_RANK + labels;
}

function labelCount(name: string): number {
  let n = 1;
  for (let i = name.indexOf('.'); i !== -1; i = name.indexOf('.', i + 1)) n += 1;
  return n;
}

/** Sort comparator: most specific first. */
export function compareSpecificity(a: string, b: string): number {
  return specificity(b) - specificity(a);
}

/** Whether `port` (1..65535) falls in one of the segment's ranges for `proto`. */
export function portAllowed(
  segment: Pick<AppSegment, 'tcpPorts' | 'udpPorts'>,
  proto: L4Protocol,
  port: number,
): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
  const ranges = proto === 'tcp' ? segment.tcpPorts : segment.udpPorts;
  return ranges.some((r) => port >= r.from && port <= r.to);
}
