import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { DrController } from '../../src/agent/dr/dr-controller.js';
import { DrSettings } from '../../src/agent/dr/dr-config.js';
import type { DrDns } from '../../src/agent/dr/dr-dns.js';
import { drApplies, mayCache, pseTargets } from '../../src/agent/dr/dr-policy.js';
import { DrWatcher } from '../../src/agent/dr/dr-watcher.js';
import { SegmentCache } from '../../src/agent/dr/segment-cache.js';
import { TunnelClient } from '../../src/agent/tunnel/tunnel-client.js';
import { encodeDrRecord, type DrLookup, type DrRecord } from '../../src/protocol/dr-record.js';
import { AppSegment } from '../../src/protocol/segments.js';
import { LogCapture } from '../helpers/log-capture.js';

const keys = generateKeyPairSync('ed25519');
const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
const HOUR = 3_600_000;

function signed(b: DrRecord['b'], now = Date.now()): string[][] {
  const r: DrRecord = { v: '1', b, k: 'zpa', m: 'fo', t: new Date(Math.floor(now / 1000) * 1000 - 60_000), x: new Date(now + HOUR) };
  return encodeDrRecord(r, { privateKey: keys.privateKey }).map((s) => [s]);
}

/** DNS whose answers the test sets. */
function fakeDns(): DrDns & { set(l: DrLookup): void; ips: string[] } {
  let lookup: DrLookup = { kind: 'missing' };
  const dns = {
    ips: ['10.0.0.2', '10.0.0.1'],
    set: (l: DrLookup) => void (lookup = l),
    txt: async () => lookup,
    a: async () => dns.ips,
  };
  return dns;
}

const segs = [
  AppSegment.parse({ id: 'dr', name: 'DR app', domains: ['dr.acme.test'], tcpPorts: [{ from: 7, to: 7 }], drEnabled: true }),
  AppSegment.parse({ id: 'plain', name: 'Plain', domains: ['plain.acme.test'], tcpPorts: [{ from: 7, to: 7 }] }),
];

describe('agent DR decisions', () => {
  it('test mode applies to the test group only; on to everyone', () => {
    expect(drApplies('on', false)).toBe(true);
    expect(drApplies('test', true)).toBe(true);
    expect(drApplies('test', false)).toBe(false);
    expect(drApplies('off', true)).toBe(false);
  });

  it('PSE targets: A records sorted and deduplicated, with the PSE port and server name', () => {
    expect(pseTargets(['10.0.0.2', '10.0.0.1', '10.0.0.2'], 8443, 'pse.acme.test')).toEqual([
      { edge: '10.0.0.1:8443', serverName: 'pse.acme.test' },
      { edge: '10.0.0.2:8443', serverName: 'pse.acme.test' },
    ]);
  });

  it('caches only from the main edge while DR does not apply', () => {
    const pseEdges = [{ edge: '10.0.0.1:443' }];
    expect(mayCache({ drActive: false, connected: true, edge: 'cloud:443', pseEdges })).toBe(true);
    expect(mayCache({ drActive: true, connected: true, edge: 'cloud:443', pseEdges })).toBe(false);
    expect(mayCache({ drActive: false, connected: true, edge: '10.0.0.1:443', pseEdges })).toBe(false);
    expect(mayCache({ drActive: false, connected: false, edge: 'cloud:443', pseEdges })).toBe(false);
  });

  it('segment cache: DR subset, interval, snapshot and validated restore', () => {
    const c = new SegmentCache();
    expect(c.due('acme', 0, 1000)).toBe(true);
    c.put('acme', segs, 0);
    expect(c.due('acme', 999, 1000)).toBe(false);
    expect(c.due('acme', 1000, 1000)).toBe(true);
    expect(c.drSegments('acme').map((s) => s.id)).toEqual(['dr']);
    const copy = new SegmentCache();
    copy.restore(JSON.parse(JSON.stringify(c.snapshot())));
    expect(copy.drSegments('acme').map((s) => s.id)).toEqual(['dr']);
    expect(() => copy.restore({ version: 2 })).toThrow();
  });

  it('settings: a key or an explicit unsigned, never neither', () => {
    expect(() => DrSettings.parse({ domain: 'dr.acme.test' })).toThrow(/publicKeyPem .* or unsigned/);
    expect(() => DrSettings.parse({ domain: 'dr.acme.test', publicKeyPem, unsigned: true })).toThrow();
    expect(DrSettings.parse({ domain: 'dr.acme.test', unsigned: true }).pollMs).toBe(240_000);
  });
});

describe('DrWatcher', () => {
  it('emits changes, warns once per distinct bad record, keeps the mode on errors', async () => {
    const logs = new LogCapture();
    const dns = fakeDns();
    const w = new DrWatcher({ domain: 'dr.acme.test', dns, publicKey: keys.publicKey, pollMs: 1e9, log: logs.log });
    const changes: string[] = [];
    const warnings: string[] = [];
    w.on('change', (c) => changes.push(`${c.previous}->${c.mode}`));
    w.on('warning', (m) => warnings.push(m));
    await w.poll();
    expect(w.mode).toBe('off');
    dns.set({ kind: 'records', txt: signed('on') });
    await w.poll();
    dns.set({ kind: 'records', txt: [encodeDrRecord({ v: '1', b: 'off', k: 'zpa', m: 'fo', t: new Date(Date.now() - 1000), x: new Date(Date.now() + HOUR) }, { privateKey: generateKeyPairSync('ed25519').privateKey })] });
    await w.poll();
    await w.poll();
    dns.set({ kind: 'error', error: 'ETIMEOUT' });
    await w.poll();
    expect(w.mode).toBe('on');
    dns.set({ kind: 'missing' });
    await w.poll();
    expect(changes).toEqual(['off->on', 'on->off']);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/signature does not verify/);
    expect(warnings[1]).toMatch(/ETIMEOUT/);
  });
});

describe('DrController', () => {
  function setup(inTestGroup = false) {
    const logs = new LogCapture();
    const dns = fakeDns();
    const now = { t: Date.now() };
    const c = new DrController({
      log: logs.log,
      now: () => now.t,
      dns: () => dns,
      tenants: { acme: { serverName: 'edge.acme.test', settings: { domain: 'dr.acme.test', publicKeyPem, psePort: 8443, inTestGroup, maxAuthAgeHours: 24 } } },
    });
    const tunnel = new TunnelClient({ tenant: 'acme', edge: '127.0.0.1:1', serverName: 'edge.acme.test', caPem: '', identity: { keyPem: '', certPem: '' }, log: logs.log });
    const reconnect = vi.spyOn(tunnel, 'reconnect');
    c.attach('acme', tunnel);
    return { c, dns, tunnel, reconnect, now };
  }

  it('on: edges from the A records, Safe Mode, reconnect; off: back to the cloud', async () => {
    const { c, dns, reconnect, now } = setup();
    const events: string[] = [];
    c.onModeChange((e) => events.push(`${e.mode}:${e.active}:${e.edges.map((x) => x.edge).join(',')}`));
    await c.pollNow();
    expect(c.currentEdges('acme')).toBeUndefined();
    dns.set({ kind: 'records', txt: signed('on') });
    await c.pollNow();
    expect(c.currentEdges('acme')).toEqual([
      { edge: '10.0.0.1:8443', serverName: 'edge.acme.test' },
      { edge: '10.0.0.2:8443', serverName: 'edge.acme.test' },
    ]);
    expect(c.status('acme')).toMatchObject({ mode: 'on', active: true, safeMode: true, edges: ['10.0.0.1:8443', '10.0.0.2:8443'] });
    expect(reconnect).toHaveBeenCalledTimes(1);
    // The last assertion holds until DR start + 24 h.
    expect(c.authValidUntil('acme', now.t - HOUR)).toBe(now.t + 24 * HOUR);
    // A new PSE in the A records is picked up at the next poll, without a reconnect.
    dns.ips = ['10.0.0.3'];
    await c.pollNow();
    expect(c.currentEdges('acme')?.map((e) => e.edge)).toEqual(['10.0.0.3:8443']);
    expect(reconnect).toHaveBeenCalledTimes(1);
    dns.set({ kind: 'missing' });
    await c.pollNow();
    expect(c.currentEdges('acme')).toBeUndefined();
    expect(c.status('acme')).toMatchObject({ mode: 'off', safeMode: false });
    expect(reconnect).toHaveBeenCalledTimes(2);
    expect(events).toEqual(['on:true:10.0.0.1:8443,10.0.0.2:8443', 'off:false:']);
  });

  it('test mode moves only a device of the test group', async () => {
    for (const inGroup of [false, true]) {
      const { c, dns, reconnect } = setup(inGroup);
      dns.set({ kind: 'records', txt: signed('test') });
      await c.pollNow();
      expect(c.isActive('acme')).toBe(inGroup);
      expect(reconnect).toHaveBeenCalledTimes(inGroup ? 1 : 0);
    }
  });
});
