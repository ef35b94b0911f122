import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../src/agent/dns/dns-server.js';
import { SyntheticPool } from '../../src/agent/ipam/synthetic-pool.js';
import {
  demoAppFor,
  dig,
  encodeQuery,
  expectBalanced,
  rcodeOf,
  startDnsmasq,
  startScripted,
  tcpQuery,
  udpQuery,
  warnIfMissing,
  type Addr,
  type Dnsmasq,
} from './helpers.js';

const NO_DIG = warnIfMissing('dig', 'dnsutils');
const NO_DNSMASQ = warnIfMissing('dnsmasq', 'dnsmasq');
const NEEDS_BOTH = NO_DIG || NO_DNSMASQ;

const BIG_TXT = Array.from({ length: 10 }, (_, i) => `--txt-record=big.test,${i}${'x'.repeat(250)}`);
/** The message without its ID, for byte-for-byte comparison. */
const body = (m: Buffer | undefined) => m?.subarray(2).toString('hex');

describe('agent DNS: forwarding to a real upstream (dnsmasq)', () => {
  let upstream: Dnsmasq;
  let server: DnsServer;
  let addr: Addr;
  let clock = Date.now();

  beforeAll(async () => {
    if (NEEDS_BOTH) return;
    upstream = await startDnsmasq(['--address=/ext.test/192.0.2.7', '--local-ttl=300', ...BIG_TXT]);
    server = new DnsServer({
      port: 0,
      pool: new SyntheticPool(),
      appFor: demoAppFor,
      reachability: async () => true,
      upstreams: [`${upstream.addr.address}:${upstream.addr.port}`],
      now: () => clock,
    });
    addr = (await server.start()).udp;
  });
  afterAll(async () => {
    if (NEEDS_BOTH) return;
    expectBalanced(server.stats());
    await server.close();
    await upstream.stop();
  });

  it.skipIf(NEEDS_BOTH)('forwards a non-app name and passes the answer through', async () => {
    const r = await dig(addr, ['a.ext.test']);
    expect(r.status).toBe('NOERROR');
    expect(r.answers).toEqual([{ name: 'a.ext.test.', ttl: 300, type: 'A', data: '192.0.2.7' }]);
    expect(upstream.queriesFor('a.ext.test')).toBe(1);
    expect(server.stats().forwarded).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(NEEDS_BOTH)('is byte for byte what the upstream says, except the ID, over UDP and TCP', async () => {
    const q = encodeQuery('bytes.ext.test', 'A', { id: 1111, edns: 1232 });
    const viaAgent = await udpQuery(addr, q);
    const direct = await udpQuery(upstream.addr, encodeQuery('bytes.ext.test', 'A', { id: 2222, edns: 1232 }));
    expect(viaAgent?.readUInt16BE(0)).toBe(1111);
    expect(body(viaAgent)).toBe(body(direct));

    const tq = encodeQuery('tcp-bytes.ext.test', 'TXT', { id: 3333 });
    const [tcpAgent] = await tcpQuery(addr, [tq]);
    const [tcpDirect] = await tcpQuery(upstream.addr, [encodeQuery('tcp-bytes.ext.test', 'TXT', { id: 4444 })]);
    expect(tcpAgent?.readUInt16BE(0)).toBe(3333);
    expect(body(tcpAgent)).toBe(body(tcpDirect));
  });

  it.skipIf(NEEDS_BOTH)('serves repeats from the cache with decremented TTLs until the TTL runs out', async () => {
    expect((await dig(addr, ['ttl.ext.test'])).answers[0]?.ttl).toBe(300);
    clock += 7_000;
    expect((await dig(addr, ['+tcp', 'ttl.ext.test'])).answers[0]?.ttl).toBe(293);
    expect(upstream.queriesFor('ttl.ext.test')).toBe(1);
    clock += 294_000;
    expect((await dig(addr, ['ttl.ext.test'])).answers[0]?.ttl).toBe(300);
    expect(upstream.queriesFor('ttl.ext.test')).toBe(2);
  });

  it.skipIf(NEEDS_BOTH)('keeps EDNS: OPT in the answer with EDNS, none without (separate cache entries)', async () => {
    const edns = await dig(addr, ['+bufsize=1232', 'edns.ext.test']);
    expect(edns.opt).toBe(true);
    expect(edns.udpSize).toBe(1232);
    const plain = await dig(addr, ['+noedns', 'edns.ext.test']);
    expect(plain.opt).toBe(false);
    expect(plain.answers[0]?.data).toBe('192.0.2.7');
  });

  it.skipIf(NEEDS_BOTH)('a truncated UDP answer is fetched again over TCP; the client gets TC, then all of it', async () => {
    const before = server.stats().forwarder;
    const r = await dig(addr, ['big.test', 'TXT']);
    expect(r.status).toBe('NOERROR');
    expect(r.raw).toContain('Truncated, retrying in TCP mode');
    expect(r.transport).toBe('TCP');
    expect(r.answers).toHaveLength(10);
    const after = server.stats().forwarder;
    expect(after.tcpFallbacks - before.tcpFallbacks).toBe(1);
    // dnsmasq saw the UDP query and the agent's TCP retry; dig's own TCP retry hit the cache.
    expect(upstream.queriesFor('big.test')).toBe(2);
    expect(after.cacheHits - before.cacheHits).toBe(1);

    const ignored = await dig(addr, ['+ignore', 'big.test', 'TXT']);
    expect(ignored.flags).toContain('tc');
    expect(ignored.answers).toEqual([]);
    // A client with a big enough buffer gets the whole cached answer over UDP.
    const large = await dig(addr, ['+bufsize=4096', 'big.test', 'TXT']);
    expect(large.transport).toBe('UDP');
    expect(large.flags).not.toContain('tc');
    expect(large.answers).toHaveLength(10);
  });

  it.skipIf(NEEDS_BOTH)('passes upstream refusals through and does not cache them', async () => {
    expect((await dig(addr, ['nothing.example'])).status).toBe('REFUSED');
    expect((await dig(addr, ['nothing.example'])).status).toBe('REFUSED');
    expect(upstream.queriesFor('nothing.example')).toBe(2);
  });

  it.skipIf(NEEDS_BOTH)('still answers app names itself', async () => {
    const r = await dig(addr, ['intranet.demo.internal']);
    expect(r.flags).toContain('aa');
    expect(upstream.queriesFor('intranet.demo.internal')).toBe(0);
  });
});

/** A reply to `q` built with dns-packet, plus raw OPT bytes when given. */
function reply(q: Buffer, p: Omit<dnsPacket.Packet, 'id' | 'questions' | 'type'>, rawOpt?: Buffer): Buffer {
  const d = dnsPacket.decode(q);
  const msg = dnsPacket.encode({ ...p, type: 'response', id: d.id, questions: d.questions });
  if (!rawOpt) return msg;
  msg.writeUInt16BE(msg.readUInt16BE(10) + 1, 10);
  return Buffer.concat([msg, rawOpt]);
}

/** OPT record with a COOKIE option (client 8 bytes + server 8 bytes). */
function optWithCookie(): Buffer {
  const b = Buffer.alloc(11 + 4 + 16);
  b.writeUInt16BE(41, 1);
  b.writeUInt16BE(1232, 3);
  b.writeUInt16BE(20, 9);
  b.writeUInt16BE(10, 11);
  b.writeUInt16BE(16, 13);
  b.fill(0xab, 15);
  return b;
}

describe('agent DNS: upstream behaviour with a scripted upstream', () => {
  it('UDP queries go out over UDP and TCP queries over TCP, with a fresh ID', async () => {
    const up = await startScripted((q) => reply(q, { flags: dnsPacket.RECURSION_AVAILABLE, answers: [{ type: 'A', name: 'x.test', ttl: 5, data: '192.0.2.1' }] }));
    const server = new DnsServer({ port: 0, pool: new SyntheticPool(), appFor: demoAppFor, reachability: async () => true, upstreams: [`127.0.0.1:${up.addr.port}`] });
    const addr = (await server.start()).udp;
    try {
      expect((await udpQuery(addr, encodeQuery('u.test', 'A', { id: 7 })))?.readUInt16BE(0)).toBe(7);
      const [t] = await tcpQuery(addr, [encodeQuery('t.test', 'A', { id: 8 })]);
      expect(t?.readUInt16BE(0)).toBe(8);
      expect(up.received).toEqual([
        { transport: 'udp', name: 'u.test' },
        { transport: 'tcp', name: 't.test' },
      ]);
    } finally {
      await server.close();
      await up.stop();
    }
  });

  it('caches NXDOMAIN for min(SOA TTL, SOA MINIMUM) and never replays a client cookie from the cache', async () => {
    const soa = { type: 'SOA' as const, name: 'neg.test', ttl: 600, data: { mname: 'ns.neg.test', rname: 'h.neg.test', serial: 1, refresh: 60, retry: 60, expire: 600, minimum: 30 } };
    const up = await startScripted((q) => reply(q, { flags: 3 | dnsPacket.RECURSION_AVAILABLE, authorities: [soa] }, optWithCookie()));
    let clock = 1_000_000;
    const server = new DnsServer({ port: 0, pool: new SyntheticPool(), appFor: demoAppFor, reachability: async () => true, upstreams: [`127.0.0.1:${up.addr.port}`], now: () => clock });
    const addr = (await server.start()).udp;
    const ask = async () => (await udpQuery(addr, encodeQuery('x.neg.test', 'A', { edns: 1232 }))) as Buffer;
    try {
      const optionsOf = (m: Buffer) => (dnsPacket.decode(m).additionals?.[0] as dnsPacket.OptAnswer).options.map((o) => o.code);
      const first = await ask();
      expect(rcodeOf(first)).toBe(3);
      expect(optionsOf(first)).toEqual([10]); // fresh answers pass the cookie through
      clock += 10_000;
      const cached = await ask();
      expect(rcodeOf(cached)).toBe(3);
      expect((dnsPacket.decode(cached).authorities?.[0] as dnsPacket.SoaAnswer).ttl).toBe(590);
      expect(optionsOf(cached)).toEqual([]);
      expect(up.received).toHaveLength(1);
      clock += 21_000;
      await ask();
      expect(up.received).toHaveLength(2);
    } finally {
      await server.close();
      await up.stop();
    }
  });

  it.skipIf(NO_DIG)('a silent upstream gives SERVFAIL; a second upstream takes over and is preferred', async () => {
    const dead = await startScripted(() => undefined);
    const live = await startScripted((q) => reply(q, { answers: [{ type: 'A', name: 'x.test', ttl: 0, data: '192.0.2.9' }] }));
    const server = new DnsServer({
      port: 0,
      pool: new SyntheticPool(),
      appFor: demoAppFor,
      reachability: async () => true,
      upstreams: [`127.0.0.1:${dead.addr.port}`],
      upstream: { attemptTimeoutMs: 200 },
    });
    const addr = (await server.start()).udp;
    try {
      expect((await dig(addr, ['x.test'])).status).toBe('SERVFAIL');
      expect(dead.received).toHaveLength(2);
      server.setUpstreams([`127.0.0.1:${dead.addr.port}`, `127.0.0.1:${live.addr.port}`]);
      expect((await dig(addr, ['x.test'])).answers[0]?.data).toBe('192.0.2.9');
      expect((await dig(addr, ['y.test'])).answers[0]?.data).toBe('192.0.2.9');
      // TTL 0: not cached, so both went upstream, and the second one straight to the live one.
      expect(live.received.map((r) => r.name)).toEqual(['x.test', 'y.test']);
      expect(dead.received).toHaveLength(3);
      expectBalanced(server.stats());
    } finally {
      await server.close();
      await dead.stop();
      await live.stop();
    }
  });

  it('refuses an upstream that is the server itself', async () => {
    const server = new DnsServer({ port: 0, pool: new SyntheticPool(), appFor: demoAppFor, reachability: async () => true });
    const { udp } = await server.start();
    await server.close();
    const looped = new DnsServer({ port: udp.port, pool: new SyntheticPool(), appFor: demoAppFor, reachability: async () => true, upstreams: [`127.0.0.1:${udp.port}`] });
    await expect(looped.start()).rejects.toThrow(/this server itself/);
  });
});
