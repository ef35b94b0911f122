// The fallback for kernels without TPROXY: nft `redirect` to the same one listener, which reads
// the original destination back with getsockopt(SO_ORIGINAL_DST). TCP only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentFixture, Netns, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
if (skip) console.log(`SKIP test/intercept-kernel/redirect: ${skip}`);

describe.skipIf(!!skip)('kernel intercept, redirect + SO_ORIGINAL_DST mode', () => {
  let ns: Netns;
  let fixture: AgentFixture;
  let stateDir: string;
  let mode: unknown;

  beforeAll(async () => {
    ns = await Netns.create();
    stateDir = await mkdtemp(join(tmpdir(), 'zcc-kstate-'));
    const started = await AgentFixture.start(ns, { stateDir, mode: 'redirect' });
    fixture = started.fixture;
    mode = (started.ready.info as { mode: string }).mode;
  });

  afterAll(async () => {
    await fixture?.stop();
    await ns?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('serves any port of the range through one listener, and resets ports outside it', async () => {
    expect(mode).toBe('redirect');
    expect(await ns.zccTable()).toMatch(/redirect to :\d+/);
    const ip = (await ns.run('dig', ['@127.0.0.1', '+short', 'app.kern.test'])).stdout.trim();
    expect((await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8000/`])).stdout).toBe('hello from 8000\n');
    const echo = await ns.run('nc', ['-N', '-w', '5', ip, '8099'], { input: 'redirected\n' });
    expect(echo.stdout).toBe('redirected\n');
    const outside = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:9000/`]);
    // Reset right after the handshake: failed connect, empty reply, failed send or reset.
    expect([7, 52, 55, 56]).toContain(outside.code);
    expect(outside.ms).toBeLessThan(3000);
  });
});
