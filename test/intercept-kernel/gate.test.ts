// The port gate (nft sets that refuse unlisted ports before the handshake) must never refuse a
// port the app allows, however its gates expire and come back: re-adding an element that still
// exists does not extend it in the kernel, so nothing may depend on refreshing one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/log-capture.js';
import { AgentFixture, Netns, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
if (skip) console.log(`SKIP test/intercept-kernel/gate: ${skip}`);

describe.skipIf(!!skip)('kernel intercept port gate with short-lived gates', () => {
  let ns: Netns;
  let fixture: AgentFixture;
  let stateDir: string;
  const gated = async (): Promise<string> => (await ns.run('nft', ['list', 'set', 'inet', 'zcc', 'gated'])).stdout;

  beforeAll(async () => {
    ns = await Netns.create();
    stateDir = await mkdtemp(join(tmpdir(), 'zcc-kstate-'));
    ({ fixture } = await AgentFixture.start(ns, { stateDir, portGate: { gateTimeoutSec: 1, refreshMs: 0 } }));
  });

  afterAll(async () => {
    await fixture?.stop();
    await ns?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('serves every connection to an allowed port while gates expire and are created again', async () => {
    const ip = (await ns.run('dig', ['@127.0.0.1', '+short', 'app.kern.test'])).stdout.trim();
    expect((await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8000/`])).stdout).toBe('hello from 8000\n');
    await waitUntil(async () => (await gated()).includes(ip), 5000, 'IP gated');
    await waitUntil(async () => !(await gated()).includes(ip), 5000, 'gate expired');
    // Connections across several gate lifetimes: each one must get through.
    // 12 s: longer than a gate plus any allowed-range lifetime tied to it (the old 10 s margin).
    const until = Date.now() + 12_000;
    let n = 0;
    while (Date.now() < until) {
      const r = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:${n % 2 ? 8099 : 8000}/`]);
      if (n % 2 === 0) expect(r.stdout, r.stderr).toBe('hello from 8000\n');
      else expect(r.code, r.stderr).not.toBe(7); // the echo app answers HTTP with its echo
      n++;
    }
    expect(n).toBeGreaterThan(4);
    expect((await ns.run('nft', ['list', 'set', 'inet', 'zcc', 'allowed_tcp'])).stdout).toContain(`${ip} . 8000-8100`);
  });
});
