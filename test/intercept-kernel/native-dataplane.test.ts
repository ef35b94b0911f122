// The native data plane (native/dataplane) end to end in a network namespace: the kernel
// intercept hands TCP to the zcc-dataplane process, which opens its own Z-Tunnel to the
// reference cloud and splices each connection to a microtunnel. Real curl and nc.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataplaneStats } from '../../native/dataplane/dataplane-process.js';
import { seededBytes } from '../fixtures/kernel-apps.js';
import { waitUntil } from '../helpers/log-capture.js';
import { nativePlaneUnavailable } from '../helpers/native-plane.js';
import { AgentFixture, Netns, netnsUnavailable } from './netns.js';

const skip = (await netnsUnavailable()) ?? nativePlaneUnavailable();
const ABORT_CLIENT = fileURLToPath(new URL('../fixtures/abort-client.ts', import.meta.url));
if (skip) console.log(`SKIP test/intercept-kernel/native-dataplane: ${skip}`);

const sha = (b: string | Buffer): string => createHash('sha256').update(typeof b === 'string' ? Buffer.from(b, 'latin1') : b).digest('hex');

describe.skipIf(!!skip)('kernel intercept with the native data plane, in a network namespace', () => {
  let ns: Netns;
  let fixture: AgentFixture;
  let stateDir: string;
  const resolve = async (name: string): Promise<string> => {
    const ip = (await ns.run('dig', ['@127.0.0.1', '+short', '+tries=1', name])).stdout.trim();
    expect(ip).toMatch(/^100\.\d+\.\d+\.\d+$/);
    return ip;
  };
  const nativeCounters = async (): Promise<DataplaneStats> => {
    const m = await fixture.request({ type: 'counters' }, 'native-counters');
    return (m as unknown as { native: DataplaneStats }).native;
  };

  beforeAll(async () => {
    ns = await Netns.create();
    stateDir = await mkdtemp(join(tmpdir(), 'zcc-native-'));
    ({ fixture } = await AgentFixture.start(ns, { stateDir, dataPlane: 'native' }));
  });

  afterAll(async () => {
    await fixture?.stop();
    await ns?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('serves curl at any port of a segment range through the native process, not the agent', async () => {
    const before = await nativeCounters();
    const ip = await resolve('app.kern.test');
    const http = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8000/`]);
    expect(http.stderr).toBe('');
    expect(http.stdout).toBe('hello from 8000\n');
    const echo = await ns.run('nc', ['-N', '-w', '5', ip, '8099'], { input: 'half-closed, then answered\n' });
    expect(echo.stdout).toBe('half-closed, then answered\n');
    const after = await nativeCounters();
    expect(after.established - before.established).toBe(2);
    expect(after.active).toBe(0);
  });

  it('carries 32 MiB down and 4 MiB up intact (SHA-256), through flow control both ways', { timeout: 60_000 }, async () => {
    const ip = await resolve('web.kern.test');
    const seed = `native-${randomBytes(4).toString('hex')}`;
    const size = 32 << 20;
    const expected = createHash('sha256');
    for (const chunk of seededBytes(seed, size)) expected.update(chunk);
    const down = await ns.run('curl', ['-sS', '--fail', '-m', '50', `http://${ip}/seeded/${seed}/${size}`], { timeoutMs: 55_000 });
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout.length).toBe(size);
    expect(sha(down.stdout)).toBe(expected.digest('hex'));
    const payload = randomBytes(4 << 20);
    const up = await ns.run('nc', ['-N', '-w', '10', await resolve('app.kern.test'), '8099'], { input: payload, timeoutMs: 30_000 });
    expect(up.stdout.length, `nc exit ${up.code} after ${up.ms} ms: ${up.stderr}`).toBe(payload.length);
    expect(sha(up.stdout)).toBe(sha(payload));
  });

  it('keeps its Z-Tunnel up through 1,500 connections reset by their clients in a row (the edge resets them at its request)', { timeout: 120_000 }, async () => {
    const ip = await resolve('app.kern.test');
    const before = await nativeCounters();
    const r = await ns.run(process.execPath, ['--import', 'tsx', ABORT_CLIENT, ip, '8099', '1500'], { timeoutMs: 110_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ done: 1500, failed: 0 });
    const after = await nativeCounters();
    expect(after.established - before.established).toBe(1500);
    // One Z-Tunnel all along: a server's nghttp2 tears a session down after ~1,000 RST_STREAMs.
    const logs = await fixture.request({ type: 'logs', minLevel: 40 }, 'logs');
    expect((logs.lines as Array<{ msg: string }>).filter((l) => l.msg === 'native Z-Tunnel down')).toEqual([]);
    expect((await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8000/`])).stdout).toBe('hello from 8000\n');
    await expect.poll(async () => (await nativeCounters()).conns, { timeout: 10_000 }).toBe(0);
  });

  it('resets at once a port no segment allows, an IP with no app, and a microtunnel the connector cannot open', async () => {
    const before = await nativeCounters();
    const outside = await ns.run('curl', ['-sS', '-m', '10', `http://${await resolve('gate.kern.test')}:9000/`]);
    expect([7, 52, 55, 56]).toContain(outside.code);
    expect(outside.ms).toBeLessThan(3000);
    const unmapped = await ns.run('curl', ['-sS', '-m', '10', 'http://100.127.255.250:8000/']);
    expect(unmapped.code).not.toBe(0);
    expect(unmapped.ms).toBeLessThan(3000);
    const noServer = await ns.run('curl', ['-sS', '-m', '10', `http://${await resolve('app.kern.test')}:8077/`]);
    expect([7, 52, 55, 56]).toContain(noServer.code);
    expect(noServer.ms).toBeLessThan(5000);
    const after = await nativeCounters();
    expect(after.refused - before.refused).toBe(2);
    expect(after.failed - before.failed).toBe(1);
    // Still serving.
    expect((await ns.run('curl', ['-sS', '-m', '10', `http://${await resolve('app.kern.test')}:8000/`])).stdout).toBe('hello from 8000\n');
    // And holding nothing for any of it once the clients are gone.
    await expect.poll(async () => (await nativeCounters()).conns, { timeout: 10_000 }).toBe(0);
  });

  // Last: every Z-Tunnel comes back, but a new name resolves only once a connector is back too.
  it('opens its Z-Tunnel again after the edge dropped it, and serves on', { timeout: 60_000 }, async () => {
    const ip = await resolve('app.kern.test');
    const dropped = await fixture.request({ type: 'drop-sessions' }, 'dropped');
    // The agent's own Z-Tunnel, the native one and the connector's.
    expect(dropped.sessions).toBeGreaterThanOrEqual(3);
    await waitUntil(async () => (await ns.run('curl', ['-sS', '-m', '5', `http://${ip}:8000/`])).stdout === 'hello from 8000\n', 30_000, 'the path to serve again');
    // It was down, and came up again after that.
    const msgs = ((await fixture.request({ type: 'logs', minLevel: 30 }, 'logs')).lines as Array<{ msg: string }>).map((l) => l.msg);
    const down = msgs.lastIndexOf('native Z-Tunnel down');
    expect(down).toBeGreaterThanOrEqual(0);
    expect(msgs.indexOf('native Z-Tunnel up', down)).toBeGreaterThan(down);
  });
});
