import dgram from 'node:dgram';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../src/agent/dns/dns-server.js';
import { SyntheticPool } from '../../src/agent/ipam/synthetic-pool.js';
import { demoAppFor, dig, encodeQuery, expectBalanced, rcodeOf, startScripted, tcpQuery, udpQuery, warnIfMissing, type Addr } from './helpers.js';

const NO_DIG = warnIfMissing('dig', 'dnsutils');

async function until(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A well-formed query with one field replaced. */
function tweak(edit: (b: Buffer) => Buffer | void): Buffer {
  const b = encodeQuery('intranet.demo.internal', 'A', { id: 0xbeef });
  return edit(b) ?? b;
}

describe('agent DNS: malformed and hostile input', () => {
  let server: DnsServer;
  let addr: Addr;

  beforeAll(async () => {
    server = new DnsServer({ port: 0, pool: new SyntheticPool(), appFor: demoAppFor, reachability: async () => true, rateLimit: false });
    addr = (await server.start()).udp;
  });
  afterAll(async () => {
    expectBalanced(server.stats());
    await server.close();
  });

  it.each<[string, Buffer, number | undefined]>([
    ['5 bytes', Buffer.from('hello'), undefined],
    ['an empty datagram', Buffer.alloc(0), undefined],
    ['a response (QR set)', tweak((b) => void b.writeUInt16BE(0x8100, 2)), undefined],
    ['a 5000-byte datagram', Buffer.concat([tweak(() => undefined), Buffer.alloc(5000 - 40)]), undefined],
    ['a header with a broken question', Buffer.from('beef01000001000000000000ff61', 'hex'), 1],
    ['two questions', tweak((b) => void b.writeUInt16BE(2, 4)), 1],
    ['no question', tweak((b) => Buffer.from(b.subarray(0, 12)).fill(0, 4)), 1],
    ['an answer in a query', tweak((b) => void b.writeUInt16BE(1, 6)), 1],
    ['trailing garbage', tweak((b) => Buffer.concat([b, Buffer.from('xyz')])), 1],
    ['a compressed question name', Buffer.from('beef0100000100000000000003616263c00c00010001', 'hex'), 1],
    ['a label longer than the message', Buffer.from('beef010000010000000000003f6162', 'hex'), 1],
    ['opcode STATUS', tweak((b) => void b.writeUInt16BE(0x1100, 2)), 4],
  ])('%s: answered with the right rcode or dropped, and counted', async (_what, msg, rcode) => {
    const before = server.stats();
    const r = await udpQuery(addr, msg, rcode === undefined ? 300 : 1_000);
    expect(rcodeOf(r)).toBe(rcode);
    if (r) expect(r.readUInt16BE(0)).toBe(msg.readUInt16BE(0));
    const after = server.stats();
    const key = rcode === undefined ? 'dropped' : rcode === 1 ? 'formerr' : 'notimp';
    expect(after[key] - before[key]).toBe(1);
  });

  it('random datagrams (fast-check) never break the server; each is FORMERR, dropped or answered', async () => {
    const sock = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const before = server.stats().queries;
    let sent = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ maxLength: 600 }),
            // Mostly-valid headers reach deeper into the parser than pure noise does.
            fc.tuple(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 300 })).map(([h, rest]) => {
              const b = Buffer.concat([Buffer.from(h), Buffer.from(rest)]);
              b.writeUInt16BE(b.readUInt16BE(2) & 0x07ff, 2);
              b.writeUInt16BE(1, 4);
              return new Uint8Array(b);
            }),
          ),
          async (bytes) => {
            sent += 1;
            await new Promise<void>((r) => sock.send(bytes, addr.port, addr.address, () => r()));
            // One at a time: back-to-back datagrams would overflow the socket buffer in the
            // kernel, and a datagram lost there says nothing about the server.
            await until(() => server.stats().queries - before === sent);
          },
        ),
        { numRuns: 400 },
      );
      await expect.poll(() => server.stats().queries - before, { timeout: 5_000 }).toBe(sent);
      // Every reply is a response (QR set) carrying FORMERR, NOTIMP, SERVFAIL or an answer.
      for (const r of replies) expect(r.readUInt16BE(2) & 0x8000).toBe(0x8000);
    } finally {
      sock.close();
    }
    // The server still works, for a well-formed query right after the noise.
    const ok = await udpQuery(addr, encodeQuery('intranet.demo.internal', 'A'));
    expect(rcodeOf(ok)).toBe(0);
    await expect.poll(() => {
      const s = server.stats();
      return s.answeredApp + s.nxdomain + s.forwarded + s.formerr + s.notimp + s.servfail + s.dropped + s.rateLimited - s.queries;
    }, { timeout: 5_000 }).toBe(0);
  });

  it.skipIf(NO_DIG)('a good query is answered right after garbage, with dig', async () => {
    await udpQuery(addr, Buffer.from('\x00\x01garbage!!!!!!!!'), 100);
    const r = await dig(addr, ['echo.demo.internal']);
    expect(r.status).toBe('NOERROR');
  });

  it('TCP: pipelined queries are all answered, a broken frame gets FORMERR, a short frame closes', async () => {
    const qs = ['intranet', 'echo', 'a.apps'].map((n, i) => encodeQuery(`${n}.demo.internal`, 'A', { id: 100 + i }));
    const replies = await tcpQuery(addr, [...qs, Buffer.from('beef01000001000000000000ff61', 'hex')]);
    expect(replies.map((r) => r.readUInt16BE(0)).sort()).toEqual([100, 101, 102, 0xbeef]);
    expect(rcodeOf(replies.find((r) => r.readUInt16BE(0) === 0xbeef))).toBe(1);
    const closed = await tcpQuery(addr, [Buffer.from('abc'), qs[0]!], 2, 2_000);
    expect(closed).toHaveLength(0);
  });

  it('TCP: a client that connects and says nothing is disconnected at the idle timeout', async () => {
    const quick = new DnsServer({ port: 0, pool: new SyntheticPool(), appFor: demoAppFor, reachability: async () => true, tcp: { idleTimeoutMs: 200 } });
    const a = (await quick.start()).tcp;
    try {
      const started = Date.now();
      await new Promise<void>((resolve) => net.connect(a.port, a.address).on('close', () => resolve()).on('error', () => undefined));
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await quick.close();
    }
  });
});

describe('agent DNS: isolation between queries', () => {
  it('a query stuck on a silent upstream or a slow edge does not hold up others', async () => {
    const silent = await startScripted(() => undefined);
    let releaseEdge: (v: boolean) => void = () => undefined;
    const reachability = (_t: string, fqdn: string) =>
      fqdn === 'slow.apps.demo.internal' ? new Promise<boolean>((r) => (releaseEdge = r)) : Promise.resolve(true);
    const server = new DnsServer({
      port: 0,
      pool: new SyntheticPool(),
      appFor: demoAppFor,
      reachability,
      upstreams: [`127.0.0.1:${silent.addr.port}`],
      upstream: { attemptTimeoutMs: 1_000, attempts: 1 },
    });
    const addr = (await server.start()).udp;
    try {
      const stuckForward = udpQuery(addr, encodeQuery('www.example', 'A', { id: 1 }), 3_000);
      const stuckApp = udpQuery(addr, encodeQuery('slow.apps.demo.internal', 'A', { id: 2 }), 3_000);
      const started = Date.now();
      const quick = await udpQuery(addr, encodeQuery('intranet.demo.internal', 'A', { id: 3 }));
      expect(rcodeOf(quick)).toBe(0);
      expect(Date.now() - started).toBeLessThan(500);
      releaseEdge(true);
      expect(rcodeOf(await stuckApp)).toBe(0);
      expect(rcodeOf(await stuckForward)).toBe(2); // SERVFAIL after the upstream timeout
      expectBalanced(server.stats());
    } finally {
      await server.close();
      await silent.stop();
    }
  });
});

describe('agent DNS: per-client rate bound', () => {
  it('drops UDP and refuses TCP beyond the bucket, counts it, and recovers', async () => {
    let clock = 0;
    const server = new DnsServer({
      port: 0,
      pool: new SyntheticPool(),
      appFor: demoAppFor,
      reachability: async () => true,
      rateLimit: { qps: 10, burst: 5 },
      now: () => clock,
    });
    const addr = (await server.start()).udp;
    try {
      const results = [];
      for (let i = 0; i < 8; i++) results.push(await udpQuery(addr, encodeQuery('intranet.demo.internal', 'A', { id: i }), 200));
      expect(results.filter(Boolean)).toHaveLength(5);
      const [refused] = await tcpQuery(addr, [encodeQuery('intranet.demo.internal', 'A')]);
      expect(rcodeOf(refused)).toBe(5); // REFUSED
      expect(server.stats().rateLimited).toBe(4);
      clock += 1_000; // ten more tokens (capped at the burst of five)
      expect(rcodeOf(await udpQuery(addr, encodeQuery('intranet.demo.internal', 'A')))).toBe(0);
      expectBalanced(server.stats());
    } finally {
      await server.close();
    }
  });
});
