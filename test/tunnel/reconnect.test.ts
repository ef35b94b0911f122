import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TunnelClient } from '../../src/agent/tunnel/tunnel-client.js';
import { WakeDetector } from '../../src/agent/tunnel/wake-detector.js';
import { CloudConfig } from '../../src/edge/cloud-config.js';
import { startCloud, type RunningCloud } from '../../src/edge/cloud.js';
import { Backoff } from '../../src/protocol/backoff.js';
import { Harness } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('wake and network-change detection', () => {
  it('reports a wake when the wall clock jumps against the monotonic clock', () => {
    const d = new WakeDetector({ jumpMs: 5000, interfaces: () => 'eth0/10.0.0.2' });
    const seen: string[] = [];
    d.on('wake', (ms) => seen.push(`wake ${ms}`));
    d.on('network-change', (sig) => seen.push(`net ${sig}`));
    d.tick(0, 0, 'eth0/10.0.0.2');
    d.tick(2_000, 2_000, 'eth0/10.0.0.2'); // both clocks moved together: no wake
    d.tick(64_000, 4_000, 'eth0/10.0.0.2'); // suspended for a minute
    d.tick(66_000, 6_000, 'wlan0/192.168.1.9'); // new network
    expect(seen).toEqual(['wake 60000', 'net wlan0/192.168.1.9']);
  });

  it('never calls a slow tick a wake: the monotonic clock advanced too', () => {
    const d = new WakeDetector({ jumpMs: 5000, interfaces: () => '' });
    let wakes = 0;
    d.on('wake', () => wakes++);
    d.tick(0, 0, '');
    d.tick(30_000, 29_990, ''); // a blocked event loop, not a sleep
    expect(wakes).toBe(0);
  });
});

describe('agent tunnel reconnection', () => {
  let cloud: RunningCloud | undefined;
  let h: Harness | undefined;
  let client: TunnelClient | undefined;

  afterEach(async () => {
    client?.stop();
    await cloud?.close();
    await h?.stop();
  });

  it('reconnects at once after a wake instead of waiting out its backoff', async () => {
    h = await new Harness({ servers: {}, segments: [{ id: 's', name: 's', domains: ['s.acme.test'], tcpPorts: [{ from: 1, to: 1 }] }] }).start();
    const port = await freePort();
    // A second edge of the same cloud data (same CAs), not listening yet.
    const tenant = h.cloud.tenants.get('acme')!.config;
    const cfg = CloudConfig.parse({ name: 'edge-2', dataDir: `${h.dataDir}/cloud`, listen: { tunnel: `127.0.0.1:${port}`, enroll: '127.0.0.1:0' }, tenants: [tenant] });
    const wake = new WakeDetector({ intervalMs: 3_600_000, interfaces: () => 'x' });
    // A backoff that would keep the agent waiting for an hour.
    client = new TunnelClient({ tenant: 'acme', edge: `127.0.0.1:${port}`, serverName: 'localhost', caPem: h.cloud.caPem, identity: h.identity, log: h.logs.log.child({ proc: 'client' }), backoff: new Backoff(3_600_000, 3_600_000), wake });
    client.start();
    await waitUntil(() => client!.status.state === 'error', 5_000, 'first connect to fail');
    cloud = await startCloud(cfg, h.logs.log.child({ proc: 'edge-2' }));
    // The second edge shares the first one's CAs; it learns the device's login like a peer edge would.
    cloud.auth.set('acme', 'test-device', h.cloud.auth.get('acme', 'test-device')!);
    wake.tick(Date.now() + 120_000, performance.now(), 'x');
    await client.waitConnected(5_000);
    expect(client.status.state).toBe('connected');
    expect(h.logs.find((l) => l.msg === 'checking Z-Tunnel' && String(l.why).startsWith('machine woke'))).toBeTruthy();
  });
});
