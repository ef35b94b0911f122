import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalDrString,
  decideDrMode,
  DrRecordError,
  encodeDrRecord,
  extendedAuthExpiry,
  formatDrTime,
  parseDrPart,
  parseDrTime,
  toTxtStrings,
  verifyDrSet,
  type DrRecord,
} from '../../src/protocol/dr-record.js';

const keys = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const NOW = Date.UTC(2025, 0, 10, 12, 0, 0);
const HOUR = 3_600_000;

function rec(over: Partial<DrRecord> = {}): DrRecord {
  return { v: '1', b: 'on', k: 'zpa', m: 'fo', t: new Date(NOW - HOUR), x: new Date(NOW + 24 * HOUR), ...over };
}

const records = (txt: string[]) => ({ kind: 'records' as const, txt: txt.map((t) => [t]) });

describe('DR record format', () => {
  it('times are UTC YYYYMMDDTHHMMSSZ and impossible dates are refused', () => {
    expect(formatDrTime(new Date(Date.UTC(2025, 1, 3, 4, 5, 6)))).toBe('20250203T040506Z');
    expect(parseDrTime('t', '20250203T040506Z').getTime()).toBe(Date.UTC(2025, 1, 3, 4, 5, 6));
    expect(() => parseDrTime('t', '20250230T000000Z')).toThrow(/field "t".*YYYYMMDDTHHMMSSZ/);
    expect(() => parseDrTime('x', '2025-02-03T04:05:06Z')).toThrow(/field "x"/);
  });

  it('signs SHA-256 of the canonical v;b;k;m;t;x string', () => {
    const r = rec();
    expect(canonicalDrString(r)).toBe(`1;on;zpa;fo;${formatDrTime(r.t)};${formatDrTime(r.x)}`);
    const [one] = encodeDrRecord(r, { privateKey: keys.privateKey });
    expect(one).toMatch(/^v=1; b=on; k=zpa; m=fo; t=\d{8}T\d{6}Z; x=\d{8}T\d{6}Z; n=1; p=1; bh=[A-Za-z0-9+/]+=*$/);
    expect(one!.length).toBeLessThanOrEqual(255);
    expect(parseDrPart(one!)).toMatchObject({ b: 'on', n: 1, p: 1 });
  });

  it('round-trips signed records split into several parts, in any order', () => {
    const parts = encodeDrRecord(rec({ b: 'test', k: 'all', m: 'wf' }), { privateKey: keys.privateKey, parts: 4 });
    expect(parts).toHaveLength(4);
    const d = decideDrMode(records([...parts].reverse()), { publicKey: keys.publicKey, now: NOW });
    expect(d).toMatchObject({ mode: 'test', warnings: [] });
    expect(d.record).toMatchObject({ k: 'all', m: 'wf' });
  });

  it('splits a long record into 255-byte TXT strings that join back', () => {
    const long = 'v=1; ' + 'a'.repeat(600);
    const strings = toTxtStrings(long);
    expect(strings.map((s) => s.length)).toEqual([255, 255, 95]);
    expect(strings.join('')).toBe(long);
  });

  it.each([
    ['b=on; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z', 'v', /missing/],
    ['v=2; b=on; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z', 'v', /expected 1/],
    ['v=1; b=maybe; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z', 'b', /on \| test \| off/],
    ['v=1; b=on; k=zdx; m=fo; t=20250101T000000Z; x=20250102T000000Z', 'k', /zia \| zpa \| all/],
    ['v=1; b=on; k=zpa; m=xx; t=20250101T000000Z; x=20250102T000000Z', 'm', /fo \| fc \| wf/],
    ['v=1; b=on; k=zpa; m=fo; t=20250102T000000Z; x=20250101T000000Z', 'x', /after the issue time/],
    ['v=1; b=on; b=off; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z', 'b', /twice/],
    ['v=1; b=on; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z; z=1', 'z', /unknown tag/],
    ['v=1; b=on; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z; n=2; bh=AAAA', 'p', /missing/],
    ['v=1; b=on; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z; n=2; p=3; bh=AAAA', 'p', /does not exist/],
    ['v=1; b=on; k=zpa; m=fo; t=20250101T000000Z; x=20250102T000000Z; n=1; p=1; bh=not base64!', 'bh', /base64/],
  ])('strict parser: %s → field %s', (text, field, message) => {
    let err: unknown;
    try {
      parseDrPart(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DrRecordError);
    expect((err as DrRecordError).field).toBe(field);
    expect((err as Error).message).toMatch(message);
  });
});

describe('deciding the mode from a TXT RRset', () => {
  const signed = (r: DrRecord, key = keys.privateKey, parts?: number) => encodeDrRecord(r, { privateKey: key, parts });
  const opts = { publicKey: keys.publicKey, now: NOW };

  it('missing record, or no record starting with v=, means off', () => {
    expect(decideDrMode({ kind: 'missing' }, opts)).toEqual({ mode: 'off', warnings: [] });
    expect(decideDrMode(records(['google-site-verification=abc']), opts)).toEqual({ mode: 'off', warnings: [] });
  });

  it('a lookup error keeps the mode (we cannot tell)', () => {
    const d = decideDrMode({ kind: 'error', error: 'ETIMEOUT' }, opts);
    expect(d.mode).toBeUndefined();
    expect(d.warnings[0]).toMatch(/lookup failed.*ETIMEOUT/);
  });

  it('ignores, with a warning, records signed by another key or tampered with', () => {
    const forged = decideDrMode(records(signed(rec(), other.privateKey)), opts);
    expect(forged.mode).toBeUndefined();
    expect(forged.warnings[0]).toMatch(/signature does not verify/);
    const tampered = signed(rec({ b: 'off' }))[0]!.replace('b=off', 'b=on');
    expect(decideDrMode(records([tampered]), opts).warnings[0]).toMatch(/signature does not verify/);
  });

  it('signing is all or nothing, per configuration', () => {
    const unsigned = encodeDrRecord(rec());
    expect(decideDrMode(records(unsigned), opts).warnings[0]).toMatch(/unsigned, but a DR public key is configured/);
    expect(decideDrMode(records(signed(rec())), { now: NOW }).warnings[0]).toMatch(/signed, but no DR public key/);
    expect(decideDrMode(records(unsigned), { now: NOW }).mode).toBe('on');
  });

  it('ignores expired records and records issued in the future', () => {
    const expired = decideDrMode(records(signed(rec({ b: 'off', t: new Date(NOW - 48 * HOUR), x: new Date(NOW - HOUR) }))), opts);
    expect(expired.mode).toBeUndefined();
    expect(expired.warnings[0]).toMatch(/expired/);
    const future = decideDrMode(records(signed(rec({ t: new Date(NOW + HOUR), x: new Date(NOW + 2 * HOUR) }))), opts);
    expect(future.warnings[0]).toMatch(/issued in the future/);
    // Five minutes of clock skew are tolerated.
    expect(decideDrMode(records(signed(rec({ t: new Date(NOW + 60_000) }))), opts).mode).toBe('on');
  });

  it('parts must all be there and agree on v;b;t;x;n', () => {
    const parts = signed(rec(), keys.privateKey, 3);
    expect(decideDrMode(records(parts.slice(0, 2)), opts).warnings[0]).toMatch(/part\(s\) 3 of 3 missing/);
    // A part of another issue of the record forms a set of its own, which is incomplete.
    const later = signed(rec({ t: new Date(NOW - 60_000) }), keys.privateKey, 3);
    const d = decideDrMode(records([parts[0]!, parts[1]!, later[2]!]), opts);
    expect(d.mode).toBeUndefined();
    expect(d.warnings).toHaveLength(2);
    expect(verifyDrSet([parseDrPart(parts[0]!), parseDrPart(later[1]!)], opts)).toMatchObject({ ok: false, error: expect.stringMatching(/disagree/) });
  });

  it('the latest valid record wins; a ZIA-only record means ZPA is off', () => {
    const on = signed(rec({ t: new Date(NOW - 2 * HOUR) }));
    const off = signed(rec({ b: 'off', t: new Date(NOW - HOUR) }));
    expect(decideDrMode(records([...on, ...off]), opts).mode).toBe('off');
    expect(decideDrMode(records(signed(rec({ k: 'zia' }))), opts).mode).toBe('off');
    expect(decideDrMode(records(signed(rec({ k: 'all' }))), opts).mode).toBe('on');
  });

  it('a malformed record next to a valid one is reported and skipped', () => {
    const d = decideDrMode(records(['v=1; b=on', ...signed(rec())]), opts);
    expect(d.mode).toBe('on');
    expect(d.warnings[0]).toMatch(/malformed DR record/);
  });

  it('extends the last assertion to DR start + max age, never shortens it', () => {
    expect(extendedAuthExpiry(NOW - HOUR, NOW, 24 * HOUR)).toBe(NOW + 24 * HOUR);
    expect(extendedAuthExpiry(NOW + 48 * HOUR, NOW, 24 * HOUR)).toBe(NOW + 48 * HOUR);
  });
});
