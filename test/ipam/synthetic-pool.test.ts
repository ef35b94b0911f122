import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidCidrError, parsePoolCidr } from '../../src/agent/ipam/cidr.js';
import { PoolExhaustedError, SyntheticPool } from '../../src/agent/ipam/synthetic-pool.js';

/** A pool with a hand-driven clock. */
function pool(cidr: string, opts: { holdMs?: number; maxMappings?: number } = {}) {
  let t = 1_000_000;
  const p = new SyntheticPool({ cidr, holdMs: opts.holdMs ?? 0, maxMappings: opts.maxMappings, now: () => t });
  return { p, advance: (ms: number) => (t += ms) };
}

describe('pool CIDR validation', () => {
  it('accepts the default range and skips network and broadcast', () => {
    expect(parsePoolCidr('100.64.0.0/10')).toEqual({ cidr: '100.64.0.0/10', first: 0x64400001, size: 2 ** 22 - 2 });
    const { p } = pool('10.0.0.0/30');
    expect([p.assign('a.x', 't'), p.assign('b.x', 't')]).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(p.contains('10.0.0.0')).toBe(false);
    expect(p.contains('10.0.0.3')).toBe(false);
  });

  it.each([
    ['100.64.0.0', 'expected a.b.c.d/prefix'],
    ['100.64.0.0/31', 'too small'],
    ['100.64.0.0/32', 'too small'],
    ['0.0.0.0/0', 'too large'],
    ['100.64.1.0/10', 'host bits'],
    ['fd00::/64', 'not a dotted-quad'],
    ['100.64.0.256/24', 'not a dotted-quad'],
    ['100.064.0.0/24', 'not a dotted-quad'],
    ['100.64.0.0/x', 'not a number'],
  ])('rejects %s', (cidr, why) => {
    expect(() => new SyntheticPool({ cidr })).toThrow(InvalidCidrError);
    expect(() => parsePoolCidr(cidr)).toThrow(why);
  });
});

describe('SyntheticPool', () => {
  it('gives one stable IP per FQDN, case-insensitively, and maps both ways', () => {
    const { p } = pool('100.64.0.0/10');
    const a = p.assign('intranet.demo.internal', 't1');
    const b = p.assign('echo.demo.internal', 't1');
    expect(a).not.toBe(b);
    expect(p.assign('Intranet.Demo.Internal.', 't1')).toBe(a);
    expect(p.lookupName('INTRANET.demo.internal')).toBe(a);
    expect(p.lookupIp(a)).toEqual({ fqdn: 'intranet.demo.internal', tenant: 't1' });
    expect(p.lookupIp('100.64.9.9')).toBeUndefined();
    expect(p.lookupIp('not an ip')).toBeUndefined();
    // Segments moved to another tenant: the IP stays, the owner follows.
    expect(p.assign('echo.demo.internal', 't2')).toBe(b);
    expect(p.lookupIp(b)?.tenant).toBe('t2');
  });

  it('recycles the least recently used idle mapping when full', () => {
    const { p, advance } = pool('10.0.0.0/29', { maxMappings: 3 });
    const ips = ['a', 'b', 'c'].map((n) => p.assign(`${n}.x`, 't'));
    advance(1);
    p.assign('a.x', 't'); // a is now the most recently used; b the least
    advance(1);
    expect(p.assign('d.x', 't')).toBe(ips[1]);
    expect(p.lookupName('b.x')).toBeUndefined();
    expect(p.lookupIp(ips[1] as string)?.fqdn).toBe('d.x');
    expect(p.lookupName('a.x')).toBe(ips[0]);
    expect(p.size).toBe(3);
  });

  it('touchAssigned is assign() for an existing mapping (tenant, LRU touch) and nothing for an unknown name', () => {
    const { p, advance } = pool('10.0.0.0/29', { maxMappings: 3 });
    const ips = ['a', 'b', 'c'].map((n) => p.assign(`${n}.x`, 't'));
    expect(p.touchAssigned('zz.x', 't')).toBeUndefined();
    expect(p.size).toBe(3);
    advance(1);
    // a becomes the most recently used and moves to tenant u; b is the least recently used.
    const n = p.touchAssigned('a.x', 'u');
    expect(n).toBe(0x0a000001);
    expect(p.lookupIp(ips[0] as string)).toEqual({ fqdn: 'a.x', tenant: 'u' });
    advance(1);
    expect(p.assign('d.x', 't')).toBe(ips[1]);
    expect(p.lookupName('a.x')).toBe(ips[0]);
    // A live mapping stays out of the recycling order when touched.
    p.acquire(ips[2] as string);
    p.touchAssigned('c.x', 't');
    advance(1);
    expect(p.assign('e.x', 't')).toBe(ips[0]);
    expect(p.lookupName('c.x')).toBe(ips[2]);
  });

  it('never recycles a mapping with live connections, and throws when all are live', () => {
    const { p, advance } = pool('10.0.0.0/30');
    const a = p.assign('a.x', 't');
    const b = p.assign('b.x', 't');
    expect(p.acquire(a)).toEqual({ fqdn: 'a.x', tenant: 't' });
    advance(10);
    // a is the least recently assigned but live: b goes.
    expect(p.assign('c.x', 't')).toBe(b);
    expect(p.acquire(b)).toBeDefined();
    expect(() => p.assign('d.x', 't')).toThrow(PoolExhaustedError);
    expect(p.lookupName('a.x')).toBe(a);
    // Releasing a makes it recyclable again.
    expect(p.release(a)).toBe(true);
    advance(1);
    expect(p.assign('d.x', 't')).toBe(a);
  });

  it('counts references and ignores unbalanced releases', () => {
    const { p } = pool('10.0.0.0/30');
    const a = p.assign('a.x', 't');
    p.acquire(a);
    p.acquire(a);
    expect(p.release(a)).toBe(true);
    expect(() => p.assign('b.x', 't')).not.toThrow();
    // Still one live connection on a: the pool is full of live-or-fresh mappings.
    p.acquire(p.lookupName('b.x') as string);
    expect(() => p.assign('c.x', 't')).toThrow(PoolExhaustedError);
    expect(p.release(a)).toBe(true);
    expect(p.release(a)).toBe(false);
    expect(p.release('10.0.0.9')).toBe(false);
    expect(p.acquire('10.0.0.9')).toBeUndefined();
    expect(p.snapshot().map((e) => [e.fqdn, e.liveConnections])).toEqual([
      ['a.x', 0],
      ['b.x', 1],
    ]);
  });

  it('holds idle mappings for holdMs before recycling them', () => {
    const { p, advance } = pool('10.0.0.0/30', { holdMs: 60_000 });
    p.assign('a.x', 't');
    p.assign('b.x', 't');
    advance(59_999);
    expect(() => p.assign('c.x', 't')).toThrow(/exhausted/);
    advance(1);
    expect(p.assign('c.x', 't')).toBe('10.0.0.1');
  });

  it('rejects invalid names and bad options', () => {
    const { p } = pool('10.0.0.0/30');
    expect(() => p.assign('bad name', 't')).toThrow(/invalid domain/);
    expect(() => new SyntheticPool({ maxMappings: 0 })).toThrow(RangeError);
    expect(() => new SyntheticPool({ holdMs: -1 })).toThrow(RangeError);
  });
});

// Random interleavings of assign/acquire/release/time on a tiny pool, checked against the
// invariants the intercept relies on.
type Op = { k: 'assign'; n: number } | { k: 'acquire'; n: number } | { k: 'release'; n: number } | { k: 'tick' };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('assign' as const), n: fc.nat(9) }),
  fc.record({ k: fc.constant('acquire' as const), n: fc.nat(9) }),
  fc.record({ k: fc.constant('release' as const), n: fc.nat(9) }),
  fc.record({ k: fc.constant('tick' as const) }),
);

describe('SyntheticPool properties', () => {
  it('no two live FQDNs share an IP, and a live mapping never changes', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 2, max: 6 }), (ops, max) => {
        const { p, advance } = pool('10.0.0.0/24', { maxMappings: max });
        const live = new Map<string, { ip: string; refs: number }>(); // fqdn -> pinned IP
        for (const o of ops) {
          const fqdn = `n${'n' in o ? o.n : 0}.x`;
          if (o.k === 'tick') advance(1);
          else if (o.k === 'assign') {
            try {
              const ip = p.assign(fqdn, 't');
              const pinned = live.get(fqdn);
              if (pinned) expect(ip).toBe(pinned.ip);
            } catch (e) {
              expect(e).toBeInstanceOf(PoolExhaustedError);
              // Exhaustion is only allowed when every slot is live (hold time is 0 here).
              expect(live.size).toBe(max);
            }
          } else if (o.k === 'acquire') {
            const ip = p.lookupName(fqdn);
            if (ip && p.acquire(ip)) {
              const e = live.get(fqdn) ?? { ip, refs: 0 };
              e.refs += 1;
              live.set(fqdn, e);
            }
          } else {
            const e = live.get(fqdn);
            if (e && p.release(e.ip)) {
              e.refs -= 1;
              if (e.refs === 0) live.delete(fqdn);
            }
          }
          for (const [name, e] of live) expect(p.lookupIp(e.ip)?.fqdn).toBe(name);
          const snap = p.snapshot();
          expect(new Set(snap.map((s) => s.ip)).size).toBe(snap.length);
          expect(new Set(snap.map((s) => s.fqdn)).size).toBe(snap.length);
          expect(snap.length).toBeLessThanOrEqual(max);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('stays O(1): 200k assignments cycling through a 1000-slot pool', () => {
    const { p, advance } = pool('100.64.0.0/10', { maxMappings: 1000 });
    const start = performance.now();
    for (let i = 0; i < 200_000; i++) {
      p.assign(`host${i}.x`, 't');
      if (i % 1000 === 0) advance(1);
    }
    expect(p.size).toBe(1000);
    expect(performance.now() - start).toBeLessThan(5_000);
  });
});

/** The pool's rules written as plainly as possible (arrays, linear scans): the reference. */
class ReferencePool {
  private readonly all: { fqdn: string; tenant: string; ip: number; refs: number; lastUsed: number }[] = [];
  private idle: string[] = [];
  private cursor = 0;

  constructor(
    private readonly first: number,
    private readonly max: number,
    private readonly holdMs: number,
    private readonly now: () => number,
  ) {}

  assign(fqdn: string, tenant: string): number {
    const m = this.all.find((x) => x.fqdn === fqdn);
    if (m) {
      m.tenant = tenant;
      this.touch(m);
      return m.ip;
    }
    let ip: number;
    if (this.cursor < this.max) {
      ip = this.first + this.cursor++;
    } else {
      const victim = this.all.find((x) => x.fqdn === this.idle[0]);
      if (!victim || this.now() - victim.lastUsed < this.holdMs) throw new PoolExhaustedError(fqdn, this.all.length);
      this.idle.shift();
      this.all.splice(this.all.indexOf(victim), 1);
      ip = victim.ip;
    }
    this.all.push({ fqdn, tenant, ip, refs: 0, lastUsed: this.now() });
    this.idle.push(fqdn);
    return ip;
  }

  touchAssigned(fqdn: string, tenant: string): number | undefined {
    return this.all.some((x) => x.fqdn === fqdn) ? this.assign(fqdn, tenant) : undefined;
  }

  acquire(ip: number): boolean {
    const m = this.all.find((x) => x.ip === ip);
    if (!m) return false;
    if (m.refs === 0) this.idle = this.idle.filter((f) => f !== m.fqdn);
    m.refs += 1;
    m.lastUsed = this.now();
    return true;
  }

  release(ip: number): boolean {
    const m = this.all.find((x) => x.ip === ip);
    if (!m || m.refs === 0) return false;
    m.refs -= 1;
    m.lastUsed = this.now();
    if (m.refs === 0) this.idle.push(m.fqdn);
    return true;
  }

  snapshot(): [number, string, string, number][] {
    return [...this.all].sort((a, b) => a.ip - b.ip).map((m) => [m.ip, m.fqdn, m.tenant, m.refs]);
  }

  private touch(m: { fqdn: string; refs: number; lastUsed: number }): void {
    m.lastUsed = this.now();
    if (m.refs === 0) {
      this.idle = this.idle.filter((f) => f !== m.fqdn);
      this.idle.push(m.fqdn);
    }
  }
}

describe('SyntheticPool against the reference model', () => {
  it('same IPs, same exhaustion, same recycling victims, same mappings, for any sequence of operations', () => {
    // Few names and few addresses, so re-uses, touches of the oldest entry and recycling
    // (the cases an LRU gets wrong) come up in most runs.
    const step = fc.oneof(
      { weight: 4, arbitrary: fc.record({ k: fc.constant('assign' as const), n: fc.nat(4), t: fc.constantFrom('t', 'u') }) },
      { weight: 2, arbitrary: fc.record({ k: fc.constant('touch' as const), n: fc.nat(4), t: fc.constantFrom('t', 'u') }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('acquire' as const), n: fc.nat(4), t: fc.constant('t') }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('release' as const), n: fc.nat(4), t: fc.constant('t') }) },
      { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const), n: fc.constantFrom(1, 10, 100), t: fc.constant('t') }) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 100 }), fc.integer({ min: 1, max: 4 }), fc.constantFrom(0, 50), (steps, max, holdMs) => {
        let t = 1_000_000;
        const now = () => t;
        const p = new SyntheticPool({ cidr: '10.0.0.0/24', maxMappings: max, holdMs, now });
        const ref = new ReferencePool(0x0a000001, max, holdMs, now);
        const ipText = (n: number) => `10.0.0.${n - 0x0a000000}`;
        for (const s of steps) {
          const fqdn = `n${s.n}.x`;
          if (s.k === 'tick') t += s.n;
          else if (s.k === 'assign') {
            let want: string;
            try {
              want = ipText(ref.assign(fqdn, s.t));
            } catch (e) {
              expect(() => p.assign(fqdn, s.t)).toThrow((e as Error).message);
              continue;
            }
            expect(p.assign(fqdn, s.t)).toBe(want);
          } else if (s.k === 'touch') expect(p.touchAssigned(fqdn, s.t)).toBe(ref.touchAssigned(fqdn, s.t));
          else {
            // Acquire and release by the IP of the n-th address of the range.
            const ip = 0x0a000001 + (s.n % max);
            if (s.k === 'acquire') expect(p.acquire(ipText(ip)) !== undefined).toBe(ref.acquire(ip));
            else expect(p.release(ipText(ip))).toBe(ref.release(ip));
          }
        }
        expect(p.snapshot().map((m) => [Number(m.ip.split('.')[3]) + 0x0a000000, m.fqdn, m.tenant, m.liveConnections])).toEqual(ref.snapshot());
      }),
      { numRuns: 3_000 },
    );
  });
});
