import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DnsServer } from '../../src/agent/dns/dns-server.js';
import { SyntheticPool } from '../../src/agent/ipam/synthetic-pool.js';
import { demoAppFor, dig, expectBalanced, warnIfMissing, type Addr } from './helpers.js';

const NO_DIG = warnIfMissing('dig', 'dnsutils');

describe('agent DNS: app names, answered with real dig', () => {
  const pool = new SyntheticPool();
  const reachability = vi.fn(async (_tenant: string, fqdn: string) => fqdn !== 'down.demo.internal');
  let server: DnsServer;
  let addr: Addr;

  beforeAll(async () => {
    server = new DnsServer({ port: 0, pool, appFor: demoAppFor, reachability, searchDomains: ['demo.internal'], domainValidation: true });
    addr = (await server.start()).udp;
  });
  afterAll(async () => {
    expectBalanced(server.stats());
    await server.close();
  });

  it.skipIf(NO_DIG)('answers an app name with a synthetic IP over UDP and the same IP over TCP', async () => {
    const udp = await dig(addr, ['intranet.demo.internal', 'A']);
    expect(udp.status).toBe('NOERROR');
    expect(udp.flags).toContain('aa');
    expect(udp.transport).toBe('UDP');
    expect(udp.answers).toHaveLength(1);
    const a = udp.answers[0]!;
    expect(a).toMatchObject({ name: 'intranet.demo.internal.', type: 'A', ttl: 10 });
    expect(pool.contains(a.data)).toBe(true);
    expect(pool.lookupIp(a.data)).toEqual({ fqdn: 'intranet.demo.internal', tenant: 'demo' });

    const tcp = await dig(addr, ['+tcp', 'intranet.demo.internal', 'A']);
    expect(tcp.transport).toBe('TCP');
    expect(tcp.status).toBe('NOERROR');
    expect(tcp.answers.map((x) => x.data)).toEqual([a.data]);
  });

  it.skipIf(NO_DIG)('answers AAAA and other types with NOERROR and no records', async () => {
    for (const type of ['AAAA', 'MX', 'TXT']) {
      const r = await dig(addr, ['echo.demo.internal', type]);
      expect(r.status).toBe('NOERROR');
      expect(r.answers).toEqual([]);
    }
  });

  it.skipIf(NO_DIG)('gives two names different IPs and one name the same IP every time', async () => {
    const one = (await dig(addr, ['intranet.demo.internal'])).answers[0]?.data;
    const two = (await dig(addr, ['echo.demo.internal'])).answers[0]?.data;
    const again = (await dig(addr, ['+tcp', 'echo.demo.internal'])).answers[0]?.data;
    expect(one).toBeDefined();
    expect(two).toBeDefined();
    expect(one).not.toBe(two);
    expect(again).toBe(two);
  });

  it.skipIf(NO_DIG)('gives wildcard segment names an IP at any depth, but not the bare suffix', async () => {
    const deep = await dig(addr, ['a.b.apps.demo.internal']);
    const shallow = await dig(addr, ['wiki.apps.demo.internal']);
    expect(deep.status).toBe('NOERROR');
    expect(pool.lookupIp(deep.answers[0]!.data)?.fqdn).toBe('a.b.apps.demo.internal');
    expect(shallow.answers[0]?.data).not.toBe(deep.answers[0]?.data);
    // "*.apps.demo.internal" does not cover "apps.demo.internal"; domain validation then says NXDOMAIN.
    expect((await dig(addr, ['apps.demo.internal'])).status).toBe('NXDOMAIN');
  });

  it.skipIf(NO_DIG)('answers PTR for an assigned synthetic IP and NXDOMAIN for an unassigned one', async () => {
    const ip = (await dig(addr, ['intranet.demo.internal'])).answers[0]!.data;
    const ptr = await dig(addr, ['-x', ip]);
    expect(ptr.status).toBe('NOERROR');
    expect(ptr.answers).toEqual([{ name: `${ip.split('.').reverse().join('.')}.in-addr.arpa.`, ttl: 10, type: 'PTR', data: 'intranet.demo.internal.' }]);
    expect((await dig(addr, ['-x', '100.127.255.254'])).status).toBe('NXDOMAIN');
  });

  it.skipIf(NO_DIG)('completes a short name with the search domain; the answer keeps the question name', async () => {
    const full = (await dig(addr, ['intranet.demo.internal'])).answers[0]!.data;
    const short = await dig(addr, ['intranet', 'A']);
    expect(short.status).toBe('NOERROR');
    expect(short.answers).toEqual([{ name: 'intranet.', ttl: 10, type: 'A', data: full }]);
    // Case is the client's, also for full names.
    const mixed = await dig(addr, ['InTraNet.Demo.Internal']);
    expect(mixed.answers[0]).toMatchObject({ name: 'InTraNet.Demo.Internal.', data: full });
  });

  it.skipIf(NO_DIG)('domain validation: unknown names in the search domain get NXDOMAIN, not forwarded', async () => {
    const before = server.stats();
    expect((await dig(addr, ['nothere.demo.internal'])).status).toBe('NXDOMAIN');
    expect((await dig(addr, ['nothere'])).status).toBe('NXDOMAIN');
    const after = server.stats();
    expect(after.nxdomain - before.nxdomain).toBe(2);
    expect(after.forwarded).toBe(before.forwarded);
    expect(after.forwarder.upstreamQueries).toBe(before.forwarder.upstreamQueries);
  });

  it.skipIf(NO_DIG)('without domain validation the same names go to the forwarder', async () => {
    server.setSearch({ searchDomains: ['demo.internal'], domainValidation: false });
    try {
      // No upstream is configured here, so "forwarded" shows as SERVFAIL rather than NXDOMAIN.
      expect((await dig(addr, ['nothere.demo.internal'])).status).toBe('SERVFAIL');
      expect((await dig(addr, ['intranet'])).status).toBe('NOERROR');
    } finally {
      server.setSearch({ searchDomains: ['demo.internal'], domainValidation: true });
    }
  });

  it.skipIf(NO_DIG)('unreachable app: NXDOMAIN, and the edge is asked once for repeated queries', async () => {
    const calls = () => reachability.mock.calls.filter(([, n]) => n === 'down.demo.internal').length;
    expect((await dig(addr, ['down.demo.internal'])).status).toBe('NXDOMAIN');
    expect((await dig(addr, ['+tcp', 'down.demo.internal', 'AAAA'])).status).toBe('NXDOMAIN');
    expect(calls()).toBe(1);
    expect(pool.lookupName('down.demo.internal')).toBeUndefined();
  });

  it.skipIf(NO_DIG)('answers with EDNS when asked with EDNS, and without when not', async () => {
    const edns = await dig(addr, ['+bufsize=1232', 'intranet.demo.internal']);
    expect(edns.opt).toBe(true);
    expect(edns.udpSize).toBe(1232);
    expect((await dig(addr, ['+noedns', 'intranet.demo.internal'])).opt).toBe(false);
  });
});

describe('agent DNS: edge and pool failures', () => {
  it.skipIf(NO_DIG)('concurrent queries share one reachability call; errors give SERVFAIL and are not cached', async () => {
    let release: (v: boolean) => void = () => undefined;
    const reachability = vi.fn((_t: string, fqdn: string) =>
      fqdn === 'broken.apps.demo.internal' ? Promise.reject(new Error('edge down')) : new Promise<boolean>((r) => (release = r)),
    );
    const server = new DnsServer({ port: 0, pool: new SyntheticPool(), appFor: demoAppFor, reachability });
    const addr = (await server.start()).udp;
    try {
      const both = Promise.all([dig(addr, ['slow.apps.demo.internal']), dig(addr, ['+tcp', 'slow.apps.demo.internal'])]);
      await vi.waitFor(() => expect(reachability).toHaveBeenCalledTimes(1));
      await new Promise((r) => setTimeout(r, 200));
      release(true);
      const [a, b] = await both;
      expect(a.answers[0]?.data).toBe(b.answers[0]?.data);
      expect(reachability).toHaveBeenCalledTimes(1);

      expect((await dig(addr, ['broken.apps.demo.internal'])).status).toBe('SERVFAIL');
      expect((await dig(addr, ['broken.apps.demo.internal'])).status).toBe('SERVFAIL');
      expect(reachability).toHaveBeenCalledTimes(3);
      expectBalanced(server.stats());
    } finally {
      await server.close();
    }
  });

  it.skipIf(NO_DIG)('an exhausted pool (all mappings live) answers SERVFAIL', async () => {
    const pool = new SyntheticPool({ cidr: '100.64.0.0/30' });
    const server = new DnsServer({ port: 0, pool, appFor: demoAppFor, reachability: async () => true });
    const addr = (await server.start()).udp;
    try {
      const ips = [];
      for (const n of ['a', 'b']) ips.push((await dig(addr, [`${n}.apps.demo.internal`])).answers[0]!.data);
      for (const ip of ips) pool.acquire(ip);
      expect((await dig(addr, ['c.apps.demo.internal'])).status).toBe('SERVFAIL');
      expect(server.stats().servfail).toBe(1);
    } finally {
      await server.close();
    }
  });
});
