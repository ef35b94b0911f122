import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DialError } from '../../src/agent/intercept/dialer.js';
import { waitUntil } from '../helpers/log-capture.js';
import { DNSMASQ, DrWorld } from './dr-world.js';

if (!DNSMASQ) console.log('SKIP test/dr/dr-e2e: dnsmasq not installed (Debian: apt-get install dnsmasq-base)');

const pseOpened = (w: DrWorld): number => w.pse.edge.counters.get('acme')!.microtunnelsOpened;
const cloudOpened = (w: DrWorld): number => w.cloud.edge.counters.get('acme')!.microtunnelsOpened;

/**
 * Disaster recovery end to end, in order: normal operation, the main edge fails and a signed
 * `on` record moves the agent to the private service edge, forged and expired records change
 * nothing, a multi-part `off` brings it back, a missing record is off too.
 */
describe.skipIf(!DNSMASQ)('disaster recovery through a private service edge (real dnsmasq)', () => {
  let w: DrWorld;

  beforeAll(async () => {
    w = await new DrWorld().start();
  });
  afterAll(async () => {
    await w?.stop();
  });

  it('no DR record: mode off, the agent uses the main edge', async () => {
    await waitUntil(() => w.dr.status('acme')?.lastPollAt, 5_000, 'first DR poll');
    expect(w.dr.status('acme')).toMatchObject({ mode: 'off', safeMode: false, cachedSegments: 2, drSegments: 1 });
    expect(w.pse.mode.mode).toBe('off');
    expect(await w.echoVia('payroll.acme.test')).toBe('hello payroll.acme.test');
    expect(await w.echoVia('wiki.acme.test')).toBe('hello wiki.acme.test');
    expect(cloudOpened(w)).toBe(2);
    expect(pseOpened(w)).toBe(0);
  });

  it('main edge down + signed on: the DR app flows through the PSE, the other app is refused', async () => {
    await w.cloud.edge.close();
    await waitUntil(() => w.tenant.tunnel.status.state !== 'connected', 5_000, 'agent sees the main edge go');
    await w.publish(w.record('on'));
    await waitUntil(() => w.dr.isActive('acme') && w.pse.mode.serving, 10_000, 'DR on at the agent and the PSE');
    await w.connectedTo(w.pse.tunnel);
    expect(w.dr.status('acme')).toMatchObject({ mode: 'on', safeMode: true, edges: [w.pse.tunnel] });
    // The PSE serves the cached DR subset: one segment, pushed to the agent on connect.
    expect(w.tenant.segments.map((s) => s.id)).toEqual(['payroll']);

    expect(await w.echoVia('payroll.acme.test')).toBe('hello payroll.acme.test');
    expect(pseOpened(w)).toBe(1);
    const stitched = w.pseLogs.find((l) => l.msg === 'microtunnel stitched');
    expect(stitched).toMatchObject({ component: 'edge', peer: 'agent alice@acme.test@laptop-1', connector: 'conn-1', segment: 'payroll' });

    const refused = await w.echoVia('wiki.acme.test').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DialError);
    expect((refused as DialError).reason).toBe('not-an-app');
    expect(pseOpened(w)).toBe(1);

    // The cloud recovers; DR stays on until the administrator publishes off.
    await w.cloud.edge.listen('127.0.0.1', w.mainPort);
  });

  it('a forged record (another key) and a tampered one are ignored with a warning', async () => {
    const intruder = generateKeyPairSync('ed25519').privateKey;
    await w.publish(w.record('off', { key: intruder }));
    const agentWarn = await w.logs.waitFor((l) => l.level === 40 && /signature does not verify/.test(l.msg), 10_000);
    expect(agentWarn).toMatchObject({ component: 'dr', mode: 'on' });
    await w.pseLogs.waitFor((l) => l.level === 40 && /signature does not verify/.test(l.msg), 10_000);

    // Another issue time than the forgery's, so the warning is a new one (repeats are logged once).
    const tampered = w.record('on', { t: Date.now() - 10_000 }).map((r) => r.replace('b=on', 'b=off'));
    const before = w.logs.lines.length;
    await w.publish(tampered);
    await waitUntil(() => w.logs.lines.slice(before).some((l) => l.level === 40 && /b=off.*signature does not verify/.test(l.msg)), 10_000, 'warning for the tampered record');
    expect(w.dr.status('acme')).toMatchObject({ mode: 'on', safeMode: true });
    expect(w.pse.mode.mode).toBe('on');
    expect(await w.echoVia('payroll.acme.test')).toBe('hello payroll.acme.test');
  });

  it('an expired off record is ignored', async () => {
    const now = Date.now();
    await w.publish(w.record('off', { t: now - 3 * 3_600_000, x: now - 3_600_000 }));
    await w.logs.waitFor((l) => l.level === 40 && /b=off.*expired/.test(l.msg), 10_000);
    expect(w.dr.status('acme')?.mode).toBe('on');
    expect(w.tenant.tunnel.status.edge).toBe(w.pse.tunnel);
  });

  it('a signed off in three parts returns the agent to the main edge', async () => {
    const parts = w.record('off', { parts: 3 });
    expect(parts).toHaveLength(3);
    await w.publish(parts);
    await waitUntil(() => !w.dr.isActive('acme') && w.pse.mode.mode === 'off', 10_000, 'DR off');
    await w.connectedTo(w.cloud.tunnel);
    expect(w.dr.status('acme')).toMatchObject({ mode: 'off', safeMode: false, edges: [] });
    // The connector's own Z-Tunnel to the cloud comes back on its backoff schedule.
    await waitUntil(() => w.cloud.dispatcher.list('acme').some((h) => h.id === 'conn-1'), 40_000, 'connector back at the main edge');
    const before = cloudOpened(w);
    expect(await w.echoVia('wiki.acme.test')).toBe('hello wiki.acme.test');
    expect(cloudOpened(w)).toBe(before + 1);
    expect(pseOpened(w)).toBe(2);
  });

  it('on again, then the record disappears: missing means off', async () => {
    await w.publish(w.record('on'));
    await waitUntil(() => w.dr.isActive('acme'), 10_000, 'DR on');
    await w.connectedTo(w.pse.tunnel);
    await w.publish([]);
    await waitUntil(() => !w.dr.isActive('acme'), 10_000, 'DR off for a missing record');
    await w.connectedTo(w.cloud.tunnel);
    expect(w.dr.status('acme')?.mode).toBe('off');
    // The PSE dropped every Z-Tunnel on leaving DR; the connector's link comes back by itself.
    await waitUntil(() => w.connector.pseConnected[0], 40_000, 'connector link to the PSE back');
  });
});
