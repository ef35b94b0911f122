import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TrustedNetworkCriteria } from '../../src/agent/config/schema.js';
import { forwardingDecision, shouldTunnel } from '../../src/agent/policy/forwarding.js';
import { gatherFacts, parseIpRoute, parseIpv6Route, parseProcNetRoute, parseResolvConf } from '../../src/agent/policy/network-facts.js';
import { TrustedNetworkMonitor, type TrustedNetworkChange } from '../../src/agent/policy/trusted-network-monitor.js';
import { canonicalIp, emptyFacts, evaluateTrust, isTrusted, type NetworkFacts } from '../../src/agent/policy/trusted-network.js';

const criteria = (c: Record<string, unknown>) => TrustedNetworkCriteria.parse(c);

const office: NetworkFacts = {
  dnsServers: ['10.0.0.53', '10.0.1.53'],
  searchDomains: ['corp.example', 'example'],
  defaultGateways: ['10.0.0.1'],
  addresses: ['127.0.0.1', '10.0.0.23', 'fe80::1', 'fd00:1::23'],
  resolved: { 'probe.corp.example': ['10.9.9.9'] },
};
const cafe: NetworkFacts = { dnsServers: ['192.168.1.1'], searchDomains: ['lan'], defaultGateways: ['192.168.1.1'], addresses: ['127.0.0.1', '192.168.1.77'], resolved: {} };

describe('isTrusted (pure)', () => {
  it.each<[string, Record<string, unknown>, NetworkFacts, boolean]>([
    ['no criteria: never trusted', {}, office, false],
    ['no criteria with all: still never trusted', { match: 'all' }, office, false],
    ['dns server matches', { dnsServers: ['10.0.1.53'] }, office, true],
    ['dns server differs', { dnsServers: ['10.0.1.53'] }, cafe, false],
    ['dns server in another IPv6 spelling', { dnsServers: ['fd00:0:0::53'] }, { ...cafe, dnsServers: ['fd00::53%eth0'] }, true],
    ['search domain, case and trailing dot ignored', { searchDomains: ['Corp.Example.'] }, office, true],
    ['search domain differs', { searchDomains: ['corp.example'] }, cafe, false],
    ['hostname resolves to the expected address', { hostname: { name: 'probe.corp.example', expectedIp: '10.9.9.9' } }, office, true],
    ['hostname resolves elsewhere', { hostname: { name: 'probe.corp.example', expectedIp: '10.9.9.9' } }, { ...office, resolved: { 'probe.corp.example': ['1.2.3.4'] } }, false],
    ['hostname does not resolve', { hostname: { name: 'probe.corp.example', expectedIp: '10.9.9.9' } }, cafe, false],
    ['default gateway', { defaultGateway: '10.0.0.1' }, office, true],
    ['default gateway differs', { defaultGateway: '10.0.0.1' }, cafe, false],
    ['network range v4', { networkRange: '10.0.0.0/16' }, office, true],
    ['network range v6', { networkRange: 'fd00:1::/64' }, office, true],
    ['network range misses', { networkRange: '10.0.0.0/16' }, cafe, false],
    ['any: one of two holds', { dnsServers: ['10.0.0.53'], defaultGateway: '172.16.0.1' }, office, true],
    ['all: one of two holds', { match: 'all', dnsServers: ['10.0.0.53'], defaultGateway: '172.16.0.1' }, office, false],
    ['all: every criterion holds', { match: 'all', dnsServers: ['10.0.0.53'], searchDomains: ['corp.example'], hostname: { name: 'probe.corp.example', expectedIp: '10.9.9.9' }, defaultGateway: '10.0.0.1', networkRange: '10.0.0.0/8' }, office, true],
    ['all: nothing holds off-site', { match: 'all', dnsServers: ['10.0.0.53'], networkRange: '10.0.0.0/8' }, cafe, false],
    ['no facts at all', { dnsServers: ['10.0.0.53'] }, emptyFacts(), false],
  ])('%s', (_name, c, facts, expected) => {
    expect(isTrusted(criteria(c), facts)).toBe(expected);
  });

  it('reports each configured criterion', () => {
    expect(evaluateTrust(criteria({ match: 'all', dnsServers: ['10.0.0.53'], defaultGateway: '172.16.0.1' }), office)).toEqual({
      trusted: false,
      results: [
        { criterion: 'dnsServers', holds: true },
        { criterion: 'defaultGateway', holds: false },
      ],
    });
    expect(canonicalIp('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(canonicalIp('FD00:0000::1')).toBe('fd00::1');
    expect(canonicalIp('nope')).toBeUndefined();
  });
});

describe('forwarding decision (pure)', () => {
  it.each([
    ['always', true, 'tunnel'],
    ['always', false, 'tunnel'],
    ['untrusted-only', true, 'direct'],
    ['untrusted-only', false, 'tunnel'],
    ['never', true, 'direct'],
    ['never', false, 'direct'],
  ] as const)('%s on a %s network → %s', (profile, trusted, action) => {
    expect(shouldTunnel(profile, trusted)).toBe(action);
    expect(forwardingDecision(profile, trusted)).toEqual({ profile, networkType: trusted ? 'trusted' : 'untrusted', action });
  });
});

describe('facts', () => {
  it('parses resolv.conf, /proc/net/route, /proc/net/ipv6_route and ip route', () => {
    expect(parseResolvConf('# generated\nnameserver 10.0.0.53\nnameserver fe80::1%eth0 ; link-local\nnameserver bogus\ndomain old.example\nsearch corp.example  example\noptions ndots:2\n')).toEqual({
      dnsServers: ['10.0.0.53', 'fe80::1%eth0'],
      searchDomains: ['corp.example', 'example'],
    });
    const route = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0',
      'eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
    ].join('\n');
    expect(parseProcNetRoute(route)).toEqual(['10.0.0.1']);
    const v6 = [
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0',
      'fd000001000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0',
    ].join('\n');
    expect(parseIpv6Route(v6)).toEqual(['fe80::1']);
    expect(parseIpRoute('default via 192.168.1.1 dev wlan0 proto dhcp metric 600\n10.0.0.0/8 via 10.1.1.1 dev tun0\n')).toEqual(['192.168.1.1']);
  });

  it('gathers from the given files, resolves names with a timeout', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'zcc-facts-'));
    try {
      await writeFile(path.join(dir, 'resolv.conf'), 'nameserver 10.0.0.53\nsearch corp.example\n');
      await writeFile(path.join(dir, 'route'), 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nv0\t00000000\t01004D0A\t0003\t0\t0\t0\t00000000\n');
      const facts = await gatherFacts({
        resolvConfPath: path.join(dir, 'resolv.conf'),
        procRoutePath: path.join(dir, 'route'),
        procIpv6RoutePath: path.join(dir, 'absent'),
        names: ['fast.example', 'slow.example', 'failing.example'],
        lookupTimeoutMs: 50,
        lookup: (n) => (n === 'fast.example' ? Promise.resolve(['10.9.9.9']) : n === 'failing.example' ? Promise.reject(new Error('ENOTFOUND')) : new Promise<string[]>(() => undefined)),
        interfaces: () => ({ v0: [{ address: '10.77.0.2', netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '10.77.0.2/24' }] }),
      });
      expect(facts).toEqual({ dnsServers: ['10.0.0.53'], searchDomains: ['corp.example'], defaultGateways: ['10.77.0.1'], addresses: ['10.77.0.2'], resolved: { 'fast.example': ['10.9.9.9'] } });
      // The real resolver: localhost is in /etc/hosts everywhere.
      const real = await gatherFacts({ resolvConfPath: path.join(dir, 'resolv.conf'), names: ['localhost'] });
      expect(real.resolved['localhost']).toContain('127.0.0.1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('TrustedNetworkMonitor', () => {
  const monitors: TrustedNetworkMonitor[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const m of monitors.splice(0)) m.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  const nextChange = (m: TrustedNetworkMonitor) =>
    once(m, 'change', { signal: AbortSignal.timeout(10_000) }).then(([c]) => c as TrustedNetworkChange);

  it('flips when resolv.conf is written in place or replaced by rename, triggered by the watcher alone', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'zcc-monitor-'));
    dirs.push(dir);
    const resolvConfPath = path.join(dir, 'resolv.conf');
    await writeFile(resolvConfPath, 'nameserver 192.168.1.1\n');
    // Poll off: only the watcher can cause the flips below.
    const m = new TrustedNetworkMonitor({ criteria: criteria({ searchDomains: ['corp.example'] }), resolvConfPath, pollIntervalMs: 0 });
    monitors.push(m);
    const first = nextChange(m);
    await m.start();
    expect(await first).toMatchObject({ trusted: false, cause: 'start' });

    let change = nextChange(m);
    await writeFile(resolvConfPath, 'nameserver 10.0.0.53\nsearch corp.example\n');
    expect(await change).toMatchObject({ trusted: true, cause: 'resolv-conf', facts: { searchDomains: ['corp.example'] } });

    change = nextChange(m);
    await writeFile(`${resolvConfPath}.tmp`, 'nameserver 192.168.1.1\nsearch lan\n');
    await rename(`${resolvConfPath}.tmp`, resolvConfPath);
    expect(await change).toMatchObject({ trusted: false, cause: 'resolv-conf' });

    // The watch follows the replaced file: an in-place write after the rename is still seen.
    change = nextChange(m);
    await writeFile(resolvConfPath, 'search corp.example\n');
    expect(await change).toMatchObject({ trusted: true, cause: 'resolv-conf' });
    expect(m.trusted).toBe(true);
  });

  it('re-evaluates on new criteria and on refresh()', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'zcc-monitor-'));
    dirs.push(dir);
    const resolvConfPath = path.join(dir, 'resolv.conf');
    await writeFile(resolvConfPath, 'nameserver 10.0.0.53\n');
    const m = new TrustedNetworkMonitor({ criteria: criteria({}), resolvConfPath, pollIntervalMs: 0, gather: { interfaces: () => ({}) } });
    monitors.push(m);
    expect((await m.start()).trusted).toBe(false);
    const change = nextChange(m);
    await m.setCriteria(criteria({ dnsServers: ['10.0.0.53'] }));
    expect(await change).toMatchObject({ trusted: true, cause: 'criteria' });
    expect((await m.refresh()).trusted).toBe(true);
  });
});
