import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AnswerCache, cacheKey } from '../../src/agent/dns/dns-cache.js';
import { parseUpstream } from '../../src/agent/dns/upstream.js';
import { buildReply, stripCookie } from '../../src/agent/dns/wire-build.js';
import { parseQuery, scanResponse, WireError } from '../../src/agent/dns/wire.js';
import { encodeQuery, rcodeOf } from './helpers.js';

const label = fc.stringMatching(/^[a-zA-Z0-9_]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((ls) => ls.join('.'));
const TYPE_CODES: Partial<Record<dnsPacket.RecordType, number>> = { A: 1, NS: 2, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33 };
const rrType = fc.constantFrom<dnsPacket.RecordType>('A', 'AAAA', 'TXT', 'PTR', 'MX', 'SRV', 'NS');

/** Throws only WireError, whatever the bytes. */
function onlyWireErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(WireError);
  }
}

describe('wire: query parsing', () => {
  it('reads back what dns-packet encodes, with and without EDNS', () => {
    fc.assert(
      fc.property(name, rrType, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), fc.nat(65535), (n, t, edns, id) => {
        const q = parseQuery(encodeQuery(n, t, { id, edns }));
        expect(q.qname).toBe(n);
        expect(q.id).toBe(id);
        expect(q.qtype).toBe(TYPE_CODES[t]);
        expect(q.edns?.udpSize).toBe(edns);
        // Our reply parses as a response to the same question.
        const reply = buildReply(q, 3);
        expect(rcodeOf(reply)).toBe(3);
        expect(dnsPacket.decode(reply).questions?.[0]?.name).toBe(n);
      }),
    );
  });

  it('escapes label bytes that would be ambiguous in text, so they never look like app names', () => {
    const raw = Buffer.from('00010100000100000000000003612e6203636f6d0000010001', 'hex');
    expect(parseQuery(raw).qname).toBe('a\\046b.com');
  });

  it('rejects random bytes with WireError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 300 }), (bytes) => {
        onlyWireErrors(() => parseQuery(Buffer.from(bytes)));
        onlyWireErrors(() => scanResponse(Buffer.from(bytes)));
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects compression loops and forward pointers in responses', () => {
    const loop = Buffer.from('000181000001000100000000c00c00010001', 'hex');
    expect(() => scanResponse(loop)).toThrow(WireError);
  });
});

describe('wire: upstream addresses', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1:53'],
    ['192.0.2.1:5353', '192.0.2.1:5353'],
    ['::1', '[::1]:53'],
    ['[fd00::1]:5300', '[fd00::1]:5300'],
  ])('parses %s', (input, label) => expect(parseUpstream(input).label).toBe(label));

  it.each(['dns.google', '192.0.2.1:0', '192.0.2.1:70000', '[192.0.2.1]:53', '1.2.3:53', ''])('rejects %j', (input) => {
    expect(() => parseUpstream(input)).toThrow(/invalid upstream/);
  });
});

function answerFor(query: Buffer, ttls: number[]): Buffer {
  const d = dnsPacket.decode(query);
  return dnsPacket.encode({
    type: 'response',
    id: 999,
    flags: dnsPacket.RECURSION_AVAILABLE,
    questions: d.questions,
    answers: ttls.map((ttl, i) => ({ type: 'A' as const, name: d.questions?.[0]?.name ?? '', ttl, data: `192.0.2.${i + 1}` })),
  });
}

describe('AnswerCache', () => {
  it('uses the smallest TTL, decrements every TTL, and gives the client its ID and spelling', () => {
    let now = 0;
    const cache = new AnswerCache({ maxEntries: 10, maxTtlSec: 3600, now: () => now });
    const q = parseQuery(encodeQuery('Host.Example', 'A', { id: 1 }));
    expect(cache.put(cacheKey(q), answerFor(encodeQuery('host.example', 'A'), [100, 40]))).toBe(true);
    now = 15_500;
    const q2 = parseQuery(encodeQuery('HOST.example', 'A', { id: 77 }));
    const hit = dnsPacket.decode(cache.get(cacheKey(q2), q2) as Buffer);
    expect(hit.id).toBe(77);
    expect(hit.questions?.[0]?.name).toBe('HOST.example');
    expect(hit.answers?.map((a) => (a as dnsPacket.StringAnswer).ttl)).toEqual([85, 25]);
    now = 40_000;
    expect(cache.get(cacheKey(q2), q2)).toBeUndefined();
  });

  it('does not cache TTL 0, truncated, SERVFAIL, or negative answers without an SOA; evicts LRU', () => {
    const cache = new AnswerCache({ maxEntries: 2, maxTtlSec: 3600, now: () => 0 });
    const raw = encodeQuery('x.example', 'A');
    expect(cache.put('a', answerFor(raw, [0]))).toBe(false);
    const tc = answerFor(raw, [60]);
    tc.writeUInt16BE(tc.readUInt16BE(2) | 0x0200, 2);
    expect(cache.put('a', tc)).toBe(false);
    const servfail = answerFor(raw, []);
    servfail.writeUInt16BE(servfail.readUInt16BE(2) | 2, 2);
    expect(cache.put('a', servfail)).toBe(false);
    const nx = answerFor(raw, []);
    nx.writeUInt16BE(nx.readUInt16BE(2) | 3, 2);
    expect(cache.put('a', nx)).toBe(false);
    const q = parseQuery(raw);
    for (const k of ['k1', 'k2', 'k3']) expect(cache.put(k, answerFor(raw, [60]))).toBe(true);
    expect(cache.size).toBe(2);
    expect(cache.get('k1', q)).toBeUndefined();
    expect(cache.get('k3', q)).toBeDefined();
  });

  it('keys on EDNS, DO and CD as well as the name, type and class', () => {
    const k = (edns?: number) => cacheKey(parseQuery(encodeQuery('a.example', 'A', { edns })));
    expect(k()).not.toBe(k(1232));
    expect(k(512)).toBe(k(4096));
  });

  it('stripCookie leaves messages without a cookie untouched', () => {
    const msg = answerFor(encodeQuery('x.example', 'A'), [60]);
    expect(stripCookie(msg, scanResponse(msg))).toBe(msg);
  });
});
