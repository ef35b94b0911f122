import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { DnsServer } from '../../src/agent/dns/dns-server.js';
import { peekQuery } from '../../src/agent/dns/hot-answers.js';
import { parseQuery } from '../../src/agent/dns/wire.js';
import { SyntheticPool } from '../../src/agent/ipam/synthetic-pool.js';
import { routeName, type RoutableTenant } from '../../src/agent/tenants/tenant-router.js';
import { AppSegment } from '../../src/protocol/segments.js';
import { demoAppFor, expectBalanced, rcodeOf } from './helpers.js';

interface Craft {
  id?: number;
  flags?: number;
  /** Labels written as latin1 bytes, case and all. */
  name: string;
  qtype?: number;
  qclass?: number;
  edns?: { udpSize: number; dnssecOk?: boolean; rdata?: Buffer; ownerByte?: number; type?: number };
}

/** A query built byte by byte, so that tests control every field. */
function craft(c: Craft): Buffer {
  const labels = c.name === '' ? [] : c.name.split('.');
  const parts: Buffer[] = [Buffer.alloc(12)];
  parts[0]!.writeUInt16BE(c.id ?? 0x1234, 0);
  parts[0]!.writeUInt16BE(c.flags ?? 0x0100, 2);
  parts[0]!.writeUInt16BE(1, 4);
  parts[0]!.writeUInt16BE(c.edns ? 1 : 0, 10);
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(c.qtype ?? 1, 1);
  tail.writeUInt16BE(c.qclass ?? 1, 3);
  parts.push(tail);
  if (c.edns) {
    const rdata = c.edns.rdata ?? Buffer.alloc(0);
    const opt = Buffer.alloc(11);
    opt[0] = c.edns.ownerByte ?? 0;
    opt.writeUInt16BE(c.edns.type ?? 41, 1);
    opt.writeUInt16BE(c.edns.udpSize, 3);
    opt.writeUInt32BE(c.edns.dnssecOk ? 0x8000 : 0, 5);
    opt.writeUInt16BE(rdata.length, 9);
    parts.push(opt, rdata);
  }
  return Buffer.concat(parts);
}

/** The key's name part (wire form) back in dotted form. */
function keyName(key: string): string {
  const labels: string[] = [];
  for (let i = 0; i < key.length - 2; ) {
    const len = key.charCodeAt(i);
    labels.push(key.slice(i + 1, i + 1 + len));
    i += 1 + len;
  }
  return labels.join('.');
}

const labelChars = fc.constantFrom(...'abcXYZ019-_'.split(''), ...'*. \u00e9\u00c9\u0000\u007f'.split(''));
const anyLabel = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-zA-Z0-9_-]{1,12}$/) },
  { weight: 1, arbitrary: fc.array(labelChars, { minLength: 1, maxLength: 8 }).map((cs) => cs.join('').replace(/\./g, 'x')) },
  { weight: 1, arbitrary: fc.constant('a'.repeat(63)) },
);
const craftArb: fc.Arbitrary<Craft> = fc.record({
  id: fc.nat(0xffff),
  flags: fc.oneof(fc.constantFrom(0x0100, 0x0000, 0x0110, 0x0120, 0x0130, 0x0010), fc.nat(0xffff)),
  name: fc.array(anyLabel, { minLength: 0, maxLength: 6 }).map((ls) => ls.join('.')),
  qtype: fc.oneof(fc.constantFrom(1, 28, 15, 12, 16, 255, 0x4141), fc.nat(0xffff)),
  qclass: fc.oneof(fc.constant(1), fc.constantFrom(3, 255, 0x0101)),
  edns: fc.option(
    fc.record({
      udpSize: fc.oneof(fc.constantFrom(0, 512, 1232, 4096, 65535), fc.nat(0xffff)),
      dnssecOk: fc.boolean(),
      rdata: fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a))),
      ownerByte: fc.oneof(fc.constant(0), fc.constantFrom(0xc0, 1)),
      type: fc.oneof(fc.constant(41), fc.constantFrom(1, 250)),
    }),
    { nil: undefined },
  ),
});

/** Byte-level damage: a changed byte, a cut, or extra bytes. */
const mutated = fc.tuple(craftArb, fc.nat(), fc.nat(255), fc.constantFrom('set', 'cut', 'append', 'none')).map(([c, pos, byte, how]) => {
  const b = craft(c);
  const at = pos % b.length;
  if (how === 'set') b[at] = byte;
  if (how === 'cut') return b.subarray(0, at);
  if (how === 'append') return Buffer.concat([b, Buffer.from([byte])]);
  return b;
});

describe('hot path: peekQuery agrees with the full parser', () => {
  it('never throws, and whatever it accepts parseQuery accepts with the same question and EDNS', () => {
    fc.assert(
      fc.property(fc.oneof(craftArb.map(craft), mutated, fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a))), (raw) => {
        const hq = peekQuery(raw);
        if (!hq) return;
        // The server's own header checks pass: long enough, a query, opcode QUERY.
        expect(raw.length).toBeGreaterThanOrEqual(12);
        expect(raw.readUInt16BE(2) & 0xf800).toBe(0);
        const q = parseQuery(raw); // must not throw
        expect(q.qclass).toBe(1);
        expect(hq.nameEnd).toBe(12 + q.question.length - 4);
        expect(keyName(hq.key)).toBe(q.qname.toLowerCase());
        expect(hq.key.charCodeAt(hq.key.length - 2)).toBe(q.qtype);
        const shape = hq.key.charCodeAt(hq.key.length - 1);
        expect((shape & 1) !== 0).toBe((q.flags & 0x0100) !== 0);
        expect((shape & 2) !== 0).toBe((q.flags & 0x0010) !== 0);
        expect((shape & 4) !== 0).toBe(q.edns !== undefined);
        expect((shape & 8) !== 0).toBe(q.edns?.dnssecOk === true);
        expect(hq.udpLimit).toBe(q.edns ? Math.min(Math.max(q.edns.udpSize, 512), 4096) : 512);
        // dns-packet, the other reference, reads the same question (it is stricter than the
        // agent about EDNS option bytes, which the agent never interprets: header + question only).
        const head = Buffer.from(raw.subarray(0, 12));
        head.writeUInt16BE(0, 10);
        const d = dnsPacket.decode(Buffer.concat([head, q.question]));
        expect(d.questions?.length).toBe(1);
        expect(d.questions?.[0]?.name.toLowerCase()).toBe(q.qname.toLowerCase());
      }),
      { numRuns: 5000 },
    );
  });

  it('accepts the queries stubs send: plain, upper case, EDNS with DO, EDNS with a cookie', () => {
    const cookie = Buffer.from('000a0008' + 'ab'.repeat(8), 'hex');
    for (const c of [
      { name: 'intranet.demo.internal' },
      { name: 'InTraNet.Demo.Internal', qtype: 28 },
      { name: '_ldap._tcp.demo.internal', qtype: 33, edns: { udpSize: 1232, dnssecOk: true } },
      { name: 'a.apps.demo.internal', edns: { udpSize: 4096, rdata: cookie } },
    ]) {
      expect(peekQuery(craft(c))).toBeDefined();
    }
  });

  it('leaves anything unusual to the full parser', () => {
    const base = craft({ name: 'intranet.demo.internal' });
    const two = Buffer.from(base);
    two.writeUInt16BE(2, 4);
    const withNs = Buffer.concat([base, Buffer.from('0000010001000000000000', 'hex')]);
    withNs.writeUInt16BE(1, 8);
    for (const raw of [
      craft({ name: 'intranet.demo.internal', qclass: 3 }), // CHAOS
      craft({ name: '' }), // the root
      craft({ name: 'a*b.demo.internal' }),
      craft({ name: 'caf\u00e9.demo.internal' }),
      craft({ name: 'intranet.demo.internal', edns: { udpSize: 1232, type: 250 } }), // TSIG-ish
      craft({ name: 'intranet.demo.internal', edns: { udpSize: 1232, ownerByte: 0xc0 } }),
      craft({ name: 'intranet.demo.internal', flags: 0x8100 }), // a response
      craft({ name: 'intranet.demo.internal', flags: 0x2100 }), // opcode UPDATE
      two,
      withNs,
      Buffer.from('beef0100000100000000000003616263c00c00010001', 'hex'), // compressed
    ]) {
      expect(peekQuery(raw)).toBeUndefined();
    }
  });

  it('keys on the name up to case, the type, RD, CD, EDNS and DO, and nothing else', () => {
    const key = (c: Craft) => peekQuery(craft(c))?.key;
    const k = key({ name: 'intranet.demo.internal' });
    expect(key({ name: 'INTRANET.demo.Internal', id: 9 })).toBe(k);
    expect(key({ name: 'intranet.demo.internal', flags: 0x0120 })).toBe(k); // AD does not matter
    expect(key({ name: 'intranet.demo.internal', flags: 0x0000 })).not.toBe(k);
    expect(key({ name: 'intranet.demo.internal', flags: 0x0110 })).not.toBe(k);
    expect(key({ name: 'intranet.demo.internal', qtype: 28 })).not.toBe(k);
    const e = key({ name: 'intranet.demo.internal', edns: { udpSize: 1232 } });
    expect(e).not.toBe(k);
    expect(key({ name: 'intranet.demo.internal', edns: { udpSize: 4096 } })).toBe(e);
    expect(key({ name: 'intranet.demo.internal', edns: { udpSize: 1232, dnssecOk: true } })).not.toBe(e);
    expect(key({ name: 'intranet.demo.interna' })).not.toBe(k);
    // Label boundaries are part of the key.
    expect(key({ name: 'ab.c' })).not.toBe(key({ name: 'a.bc' }));
  });
});

/** A DNS server on a hand-driven clock, fed through handle() (no sockets needed). */
function world(opts: { cidr?: string; holdMs?: number; searchDomains?: string[]; domainValidation?: boolean } = {}) {
  let clock = 1_000_000;
  const now = () => clock;
  const pool = new SyntheticPool({ cidr: opts.cidr ?? '100.64.0.0/10', holdMs: opts.holdMs ?? 0, now });
  const verdicts = new Map<string, boolean>();
  const reachability = vi.fn(async (_t: string, fqdn: string) => verdicts.get(fqdn) ?? true);
  const server = new DnsServer({
    port: 0,
    pool,
    appFor: demoAppFor,
    reachability,
    rateLimit: false,
    now,
    reachabilityCache: { positiveTtlMs: 60_000, negativeTtlMs: 10_000 },
    searchDomains: opts.searchDomains ?? ['demo.internal'],
    domainValidation: opts.domainValidation ?? true,
  });
  const ask = async (c: Craft, transport: 'udp' | 'tcp' = 'udp') => (await server.handle(craft(c), transport, '127.0.0.1')) as Buffer;
  const ipOf = (m: Buffer) => {
    const a = dnsPacket.decode(m).answers?.find((r) => r.type === 'A');
    return a?.type === 'A' ? a.data : undefined;
  };
  return { server, pool, verdicts, reachability, ask, ipOf, advance: (ms: number) => (clock += ms) };
}

describe('hot path: app answers reused only while they hold', () => {
  it('a repeat is served from the hot cache, byte for byte what the full path sends, in the client spelling and ID', async () => {
    const w = world();
    const first = await w.ask({ name: 'intranet.demo.internal', id: 1 });
    expect(w.server.stats().hotAnswers).toBe(1);
    const again = await w.ask({ name: 'intranet.demo.internal', id: 2 });
    expect(again.readUInt16BE(0)).toBe(2);
    expect(again.subarray(2)).toEqual(first.subarray(2));
    const mixed = await w.ask({ name: 'IntraNet.DEMO.internal', id: 3 });
    expect(dnsPacket.decode(mixed).answers?.[0]).toMatchObject({ name: 'IntraNet.DEMO.internal', type: 'A', ttl: 10, data: w.ipOf(first) });
    // The same query over TCP takes the full path and says the same.
    expect((await w.ask({ name: 'IntraNet.DEMO.internal', id: 3 }, 'tcp')).equals(mixed)).toBe(true);
    expect(w.reachability).toHaveBeenCalledTimes(1);
    expect(w.server.stats().answeredApp).toBe(4);
    expect(w.server.stats().hotHits).toBe(2);
    expectBalanced(w.server.stats());
  });

  it('keeps EDNS, DO and RD/CD per entry', async () => {
    const w = world();
    for (let i = 0; i < 2; i++) {
      const plain = dnsPacket.decode(await w.ask({ name: 'echo.demo.internal' }));
      expect(plain.additionals ?? []).toEqual([]);
      const edns = dnsPacket.decode(await w.ask({ name: 'echo.demo.internal', edns: { udpSize: 1232, dnssecOk: true } }));
      expect(edns.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232, flag_do: true });
      const noRd = await w.ask({ name: 'echo.demo.internal', flags: 0x0010 });
      expect(noRd.readUInt16BE(2) & 0x0110).toBe(0x0010);
    }
    expect(w.server.stats().hotAnswers).toBe(3);
  });

  it('AAAA and other types: NOERROR without records from the hot cache too, and no pool mapping', async () => {
    const w = world();
    for (let i = 0; i < 3; i++) {
      const m = await w.ask({ name: 'v6.apps.demo.internal', qtype: 28 });
      expect(rcodeOf(m)).toBe(0);
      expect(dnsPacket.decode(m).answers).toEqual([]);
    }
    expect(w.server.stats().hotAnswers).toBe(1);
    expect(w.pool.lookupName('v6.apps.demo.internal')).toBeUndefined();
  });

  it('a routing change is seen at once: another tenant, or no app at all', async () => {
    let tenants: RoutableTenant[] = [
      { id: 'one', segments: [AppSegment.parse({ id: 's', name: 's', domains: ['*.corp.test'] })] },
      { id: 'two', segments: [AppSegment.parse({ id: 't', name: 't', domains: ['other.test'] })] },
    ];
    const pool = new SyntheticPool();
    const reachability = vi.fn(async () => true);
    const server = new DnsServer({
      port: 0,
      pool,
      appFor: (n) => {
        const r = routeName(tenants, n);
        return r && { tenant: r.tenant.id };
      },
      reachability,
      rateLimit: false,
    });
    const ask = async () => (await server.handle(craft({ name: 'wiki.corp.test' }), 'udp', '127.0.0.1')) as Buffer;
    const first = await ask();
    await ask();
    expect(reachability.mock.calls).toEqual([['one', 'wiki.corp.test']]);
    // The segment moves to tenant two: asked again for the new tenant, same IP, new owner.
    tenants = [
      { id: 'one', segments: [] },
      { id: 'two', segments: [AppSegment.parse({ id: 's', name: 's', domains: ['*.corp.test'] })] },
    ];
    const moved = await ask();
    expect(moved.subarray(2)).toEqual(first.subarray(2));
    expect(reachability.mock.calls).toEqual([
      ['one', 'wiki.corp.test'],
      ['two', 'wiki.corp.test'],
    ]);
    expect(pool.lookupName('wiki.corp.test')).toBe(pool.snapshot()[0]?.ip);
    expect(pool.snapshot()[0]?.tenant).toBe('two');
    // No segment covers it any more: forwarded (no upstream here, so SERVFAIL), not answered.
    tenants = [{ id: 'two', segments: [AppSegment.parse({ id: 't', name: 't', domains: ['other.test'] })] }];
    expect(rcodeOf(await ask())).toBe(2);
    expect(server.stats().forwarded + server.stats().servfail).toBe(1);
  });

  it('a verdict that expires is asked again, and a negative one answers NXDOMAIN', async () => {
    const w = world();
    await w.ask({ name: 'intranet.demo.internal' });
    await w.ask({ name: 'intranet.demo.internal' });
    expect(w.reachability).toHaveBeenCalledTimes(1);
    w.advance(59_000);
    await w.ask({ name: 'intranet.demo.internal' });
    expect(w.reachability).toHaveBeenCalledTimes(1);
    w.advance(2_000);
    w.verdicts.set('intranet.demo.internal', false);
    expect(rcodeOf(await w.ask({ name: 'intranet.demo.internal' }))).toBe(3);
    expect(w.reachability).toHaveBeenCalledTimes(2);
    expect(rcodeOf(await w.ask({ name: 'intranet.demo.internal' }))).toBe(3);
    expect(w.reachability).toHaveBeenCalledTimes(2);
    expectBalanced(w.server.stats());
  });

  it('flushCaches and setSearch forget reused answers too', async () => {
    const w = world();
    await w.ask({ name: 'intranet' });
    expect(w.ipOf(await w.ask({ name: 'intranet' }))).toBe(w.pool.lookupName('intranet.demo.internal'));
    w.server.flushCaches();
    expect(w.server.stats().hotAnswers).toBe(0);
    await w.ask({ name: 'intranet' });
    expect(w.reachability).toHaveBeenCalledTimes(2);
    // The short name no longer completes: NXDOMAIN under domain validation, not a stale answer.
    w.server.setSearch({ searchDomains: ['other.internal'], domainValidation: true });
    expect(rcodeOf(await w.ask({ name: 'intranet' }))).toBe(3);
  });

  it('the pool is touched on every reuse, so LRU recycling skips names still asked for', async () => {
    // Two addresses, no hold time: the third name recycles the least recently used mapping.
    const w = world({ cidr: '100.64.0.0/30' });
    const a = w.ipOf(await w.ask({ name: 'a.apps.demo.internal' }));
    const b = w.ipOf(await w.ask({ name: 'b.apps.demo.internal' }));
    w.advance(10);
    // a is now the most recently used, through the hot path only.
    expect(w.ipOf(await w.ask({ name: 'a.apps.demo.internal' }))).toBe(a);
    expect(w.server.stats().hotAnswers).toBe(2);
    w.advance(10);
    const c = w.ipOf(await w.ask({ name: 'c.apps.demo.internal' }));
    expect(c).toBe(b);
    expect(w.pool.lookupName('a.apps.demo.internal')).toBe(a);
    expect(w.pool.lookupName('b.apps.demo.internal')).toBeUndefined();
    // b's remembered answer names an IP that is c's now: never sent again. b gets a fresh
    // mapping (recycling a, the least recently used by now), and every answer matches the pool.
    w.advance(10);
    const b2 = w.ipOf(await w.ask({ name: 'b.apps.demo.internal' }));
    expect(b2).toBe(w.pool.lookupName('b.apps.demo.internal'));
    expect(b2).not.toBe(c);
    w.advance(10);
    expect(w.ipOf(await w.ask({ name: 'c.apps.demo.internal' }))).toBe(w.pool.lookupName('c.apps.demo.internal'));
    expect(w.ipOf(await w.ask({ name: 'a.apps.demo.internal' }))).toBe(w.pool.lookupName('a.apps.demo.internal'));
  });

  it('a mapping with a live connection is never recycled, however the names are asked', async () => {
    const w = world({ cidr: '100.64.0.0/30' });
    const a = w.ipOf(await w.ask({ name: 'a.apps.demo.internal' })) as string;
    w.pool.acquire(a);
    for (const n of ['b', 'c', 'd', 'b', 'c']) {
      w.advance(10);
      await w.ask({ name: `${n}.apps.demo.internal` });
      await w.ask({ name: `${n}.apps.demo.internal` });
    }
    expect(w.ipOf(await w.ask({ name: 'a.apps.demo.internal' }))).toBe(a);
    expect(w.pool.lookupIp(a)?.fqdn).toBe('a.apps.demo.internal');
  });

  it('differential: any query, valid or damaged, gets the same reply over UDP (hot path) as over TCP (full path)', async () => {
    const w = world();
    const names = ['intranet.demo.internal', 'echo.demo.internal', 'x.apps.demo.internal', 'intranet', 'nothere.demo.internal', 'www.example'];
    const base = fc.record({
      id: fc.nat(0xffff),
      flags: fc.constantFrom(0x0100, 0x0000, 0x0110, 0x0120),
      name: fc.tuple(fc.constantFrom(...names), fc.array(fc.boolean(), { maxLength: 40 })).map(([n, ups]) =>
        [...n].map((ch, i) => (ups[i] ? ch.toUpperCase() : ch)).join(''),
      ),
      qtype: fc.constantFrom(1, 28, 15, 255),
      edns: fc.option(fc.record({ udpSize: fc.constantFrom(0, 512, 1232, 4096), dnssecOk: fc.boolean() }), { nil: undefined }),
    });
    // Fill the hot cache with every combination first.
    await fc.assert(
      fc.asyncProperty(base, async (c) => {
        await w.ask(c);
      }),
      { numRuns: 300 },
    );
    const damaged = fc.tuple(base, fc.nat(), fc.nat(255), fc.constantFrom('set', 'cut', 'append', 'none')).map(([c, pos, byte, how]) => {
      const b = craft(c);
      const at = pos % b.length;
      if (how === 'set') b[at] = byte;
      if (how === 'cut') return b.subarray(0, at);
      if (how === 'append') return Buffer.concat([b, Buffer.from([byte])]);
      return b;
    });
    const before = w.server.stats().hotHits;
    await fc.assert(
      fc.asyncProperty(damaged, async (raw) => {
        const udp = await w.server.handle(raw, 'udp', '127.0.0.1');
        const tcp = await w.server.handle(raw, 'tcp', '127.0.0.1');
        if (!tcp) {
          // Dropped over TCP: the same message is dropped over UDP (TCP only refuses by rate).
          expect(udp).toBeUndefined();
          return;
        }
        expect(udp?.toString('hex')).toBe(tcp.toString('hex'));
      }),
      { numRuns: 2000 },
    );
    // A good share went through the hot path (undamaged, or damaged where it does not matter).
    expect(w.server.stats().hotHits - before).toBeGreaterThan(200);
    expectBalanced(w.server.stats());
  });
});
