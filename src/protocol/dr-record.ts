import { createHash, sign, verify, type KeyObject } from 'node:crypto';

/**
 * The disaster-recovery trigger (seed 003, "Disaster Recovery"): a DKIM-like TXT record on the
 * customer's DR domain, read by agents, private service edges and connectors. Format, signing
 * and the pure "what mode does this RRset mean" decision live here so every reader agrees.
 *
 *   v=1; b=on; k=zpa; m=fo; t=20250101T120000Z; x=20250108T120000Z; n=1; p=1; bh=<base64>
 *
 * Signature: Ed25519 over SHA-256("v;b;k;m;t;x") — the field values in that order joined by
 * ";", t and x in the wire form above — base64. A signature longer than one record allows is
 * cut into `n` parts (`p` = 1 … n); parts must agree on every signed field and on n, and their
 * `bh` pieces are concatenated in `p` order. See docs/disaster-recovery.md.
 */

export const DR_VERSION = '1';
export const DR_BODIES = ['on', 'test', 'off'] as const;
export const DR_KINDS = ['zia', 'zpa', 'all'] as const;
export const DR_FORWARDING = ['fo', 'fc', 'wf'] as const;
export type DrMode = (typeof DR_BODIES)[number];
export type DrKind = (typeof DR_KINDS)[number];
export type DrForwarding = (typeof DR_FORWARDING)[number];

/** What the signature covers. */
export interface DrRecord {
  v: typeof DR_VERSION;
  b: DrMode;
  k: DrKind;
  m: DrForwarding;
  /** Issue and expiry times, whole seconds UTC. */
  t: Date;
  x: Date;
}

/** One TXT record: the signed fields plus, when signed, which piece of the signature it holds. */
export interface DrPart extends DrRecord {
  n?: number;
  p?: number;
  bh?: string;
}

/** A record that does not parse; `field` names the offending tag. */
export class DrRecordError extends Error {
  override readonly name = 'DrRecordError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`DR record field "${field}": ${message}`);
  }
}

/** A DNS TXT character-string holds at most 255 bytes (RFC 1035 §3.3). */
export const TXT_STRING_MAX = 255;
const MAX_PARTS = 16;
const TAGS = ['v', 'b', 'k', 'm', 't', 'x', 'n', 'p', 'bh'] as const;
const TIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function formatDrTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

export function parseDrTime(field: string, text: string): Date {
  const m = TIME.exec(text);
  const d = m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
  // Round-tripping rejects impossible dates such as 20250230T000000Z.
  if (!d || formatDrTime(d) !== text) throw new DrRecordError(field, `expected a UTC time YYYYMMDDTHHMMSSZ, got ${JSON.stringify(text)}`);
  return d;
}

function oneOf<T extends string>(field: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new DrRecordError(field, `expected one of ${allowed.join(' | ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

function count(field: string, value: string): number {
  if (!/^[1-9]\d?$/.test(value) || Number(value) > MAX_PARTS) throw new DrRecordError(field, `expected an integer 1 … ${MAX_PARTS}, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Whether a TXT record is meant as a DR record at all (other TXT data may share the name). */
export function looksLikeDrRecord(text: string): boolean {
  return /^\s*v\s*=/.test(text);
}

/** Parses one TXT record (its strings already concatenated). Strict: unknown or repeated tags fail. */
export function parseDrPart(text: string): DrPart {
  const tags = new Map<string, string>();
  for (const item of text.split(';')) {
    if (item.trim() === '') continue; // a trailing ";" is allowed, as in DKIM
    const eq = item.indexOf('=');
    if (eq < 0) throw new DrRecordError(item.trim(), 'expected tag=value');
    const tag = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (!(TAGS as readonly string[]).includes(tag)) throw new DrRecordError(tag, `unknown tag; expected ${TAGS.join(', ')}`);
    if (tags.has(tag)) throw new DrRecordError(tag, 'appears twice');
    tags.set(tag, value);
  }
  const need = (tag: string): string => {
    const v = tags.get(tag);
    if (v === undefined) throw new DrRecordError(tag, 'missing');
    return v;
  };
  if (need('v') !== DR_VERSION) throw new DrRecordError('v', `expected ${DR_VERSION}, got ${JSON.stringify(tags.get('v'))}`);
  const part: DrPart = {
    v: DR_VERSION,
    b: oneOf('b', need('b'), DR_BODIES),
    k: oneOf('k', need('k'), DR_KINDS),
    m: oneOf('m', need('m'), DR_FORWARDING),
    t: parseDrTime('t', need('t')),
    x: parseDrTime('x', need('x')),
  };
  if (part.x.getTime() <= part.t.getTime()) throw new DrRecordError('x', 'expiry must be after the issue time t');
  const signedTags = ['n', 'p', 'bh'].filter((t) => tags.has(t));
  if (signedTags.length === 0) return part;
  // A signed record carries all three; a partial set is malformed rather than "unsigned".
  for (const t of ['n', 'p', 'bh']) need(t);
  part.n = count('n', need('n'));
  part.p = count('p', need('p'));
  if (part.p > part.n) throw new DrRecordError('p', `part ${part.p} of ${part.n} does not exist`);
  part.bh = need('bh');
  if (!BASE64.test(part.bh)) throw new DrRecordError('bh', 'expected base64');
  return part;
}

/** The string whose SHA-256 is signed. */
export function canonicalDrString(r: DrRecord): string {
  return [r.v, r.b, r.k, r.m, formatDrTime(r.t), formatDrTime(r.x)].join(';');
}

const digest = (r: DrRecord): Buffer => createHash('sha256').update(canonicalDrString(r), 'utf8').digest();

function assertEd25519(key: KeyObject, type: 'private' | 'public'): void {
  if (key.type !== type || key.asymmetricKeyType !== 'ed25519') throw new Error(`DR ${type} key must be an Ed25519 ${type} key, got ${key.asymmetricKeyType ?? key.type}`);
}

export function signDrRecord(r: DrRecord, privateKey: KeyObject): string {
  assertEd25519(privateKey, 'private');
  return sign(null, digest(r), privateKey).toString('base64');
}

/** The TXT records (one string each, before 255-byte splitting) publishing `r`. */
export function encodeDrRecord(r: DrRecord, opts: { privateKey?: KeyObject; parts?: number } = {}): string[] {
  const head = `v=${r.v}; b=${r.b}; k=${r.k}; m=${r.m}; t=${formatDrTime(r.t)}; x=${formatDrTime(r.x)}`;
  if (!opts.privateKey) return [head];
  const bh = signDrRecord(r, opts.privateKey);
  // As few parts as keep each record within one TXT string, unless more are asked for.
  const n = opts.parts ?? Math.max(1, Math.ceil(bh.length / (TXT_STRING_MAX - head.length - 20)));
  if (n < 1 || n > MAX_PARTS || n > bh.length) throw new Error(`parts must be 1 … ${Math.min(MAX_PARTS, bh.length)}`);
  const size = Math.ceil(bh.length / n);
  return Array.from({ length: n }, (_, i) => `${head}; n=${n}; p=${i + 1}; bh=${bh.slice(i * size, (i + 1) * size)}`);
}

/** Splits a record into TXT character-strings of at most 255 bytes (ASCII, so chars = bytes). */
export function toTxtStrings(record: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < record.length; i += TXT_STRING_MAX) out.push(record.slice(i, i + TXT_STRING_MAX));
  return out.length ? out : [''];
}

export type DrVerdict = { ok: true; record: DrRecord; signed: boolean } | { ok: false; error: string };

export interface DrVerifyOptions {
  /** Set: records must be signed by this Ed25519 key. Unset: records must be unsigned. */
  publicKey?: KeyObject;
  now: number;
  /** How far in the future `t` may lie (clock skew between the DR tool and this host). */
  maxSkewMs?: number;
}

const groupKey = (p: DrPart): string => `${canonicalDrString(p)};${p.n ?? 0}`;

/** Checks one record set (all parts of one record): completeness, agreement, signature, times. */
export function verifyDrSet(parts: DrPart[], opts: DrVerifyOptions): DrVerdict {
  const first = parts[0];
  if (!first) return { ok: false, error: 'no record' };
  const label = `DR record b=${first.b} t=${formatDrTime(first.t)}`;
  if (parts.some((p) => groupKey(p) !== groupKey(first))) return { ok: false, error: `${label}: parts disagree on v;b;k;m;t;x;n` };
  const signed = first.bh !== undefined;
  if (opts.publicKey && !signed) return { ok: false, error: `${label} is unsigned, but a DR public key is configured (activation and deactivation must both be signed)` };
  if (!opts.publicKey && signed) return { ok: false, error: `${label} is signed, but no DR public key is configured (activation and deactivation must both be unsigned)` };
  if (opts.publicKey) {
    const n = first.n!;
    const byIndex = new Map<number, string>();
    for (const p of parts) {
      if (byIndex.has(p.p!) && byIndex.get(p.p!) !== p.bh) return { ok: false, error: `${label}: part ${p.p} of ${n} appears twice with different bh` };
      byIndex.set(p.p!, p.bh!);
    }
    const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
    if (missing.length) return { ok: false, error: `${label}: part(s) ${missing.join(', ')} of ${n} missing` };
    const sig = Buffer.from(Array.from({ length: n }, (_, i) => byIndex.get(i + 1)!).join(''), 'base64');
    assertEd25519(opts.publicKey, 'public');
    if (!verify(null, digest(first), opts.publicKey, sig)) return { ok: false, error: `${label}: signature does not verify with the configured DR public key (forged, tampered or signed by another key)` };
  } else if (parts.length > 1) {
    return { ok: false, error: `${label}: an unsigned record has one part` };
  }
  if (first.t.getTime() > opts.now + (opts.maxSkewMs ?? 5 * 60_000)) return { ok: false, error: `${label}: issued in the future` };
  if (first.x.getTime() <= opts.now) return { ok: false, error: `${label}: expired at ${first.x.toISOString()}` };
  const { v, b, k, m, t, x } = first;
  return { ok: true, record: { v, b, k, m, t, x }, signed };
}

/** What a lookup of the DR domain's TXT records gave. */
export type DrLookup = { kind: 'records'; txt: string[][] } | { kind: 'missing' } | { kind: 'error'; error: string };

/** `mode` undefined: keep the current mode (nothing trustworthy was read). */
export interface DrDecision {
  mode?: DrMode;
  record?: DrRecord;
  warnings: string[];
}

/**
 * The mode a DR domain's TXT RRset asks of a ZPA component. Missing record ≡ off. A record that
 * fails any check is ignored with a warning (mode unchanged), so neither a forgery nor a
 * replayed expired record can flip the mode. Among several valid records the latest `t` wins;
 * a valid ZIA-only record (k=zia) means ZPA is not in DR.
 */
export function decideDrMode(lookup: DrLookup, opts: DrVerifyOptions): DrDecision {
  if (lookup.kind === 'missing') return { mode: 'off', warnings: [] };
  if (lookup.kind === 'error') return { warnings: [`DR domain lookup failed, mode unchanged: ${lookup.error}`] };
  const warnings: string[] = [];
  const sets = new Map<string, DrPart[]>();
  for (const strings of lookup.txt) {
    const text = strings.join('');
    if (!looksLikeDrRecord(text)) continue;
    try {
      const part = parseDrPart(text);
      sets.set(groupKey(part), [...(sets.get(groupKey(part)) ?? []), part]);
    } catch (err) {
      warnings.push(`ignoring malformed DR record: ${(err as Error).message}`);
    }
  }
  if (sets.size === 0 && warnings.length === 0) return { mode: 'off', warnings };
  let best: DrRecord | undefined;
  for (const parts of sets.values()) {
    const v = verifyDrSet(parts, opts);
    if (!v.ok) warnings.push(`ignoring ${v.error}`);
    else if (!best || v.record.t > best.t) best = v.record;
  }
  if (!best) return { warnings };
  return { mode: best.k === 'zia' ? 'off' : best.b, record: best, warnings };
}

/**
 * Authentication during DR (seed 003): the IdP is unreachable, so the last assertion stays
 * valid until DR start + max age, never less than it already was.
 */
export function extendedAuthExpiry(lastExpiresAt: number, drStartedAt: number, maxAgeMs: number): number {
  return Math.max(lastExpiresAt, drStartedAt + maxAgeMs);
}
