// A key and certificate copied to another device pass TLS, but the agent there presents that
// device's fingerprint in its hello: the edge compares it with the certified one and refuses.
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TunnelClient, type TunnelState } from '../../src/agent/tunnel/tunnel-client.js';
import { Backoff } from '../../src/protocol/backoff.js';
import { makeHello } from '../../src/protocol/control-channel.js';
import { ZTunnelSession } from '../../src/protocol/session.js';
import { tunnelClientOptions } from '../../src/protocol/tls.js';
import { CAPABILITIES } from '../../src/protocol/version.js';
import { FINGERPRINT, Harness } from '../helpers/harness.js';
import { waitUntil, type LogLine } from '../helpers/log-capture.js';
import { namespaceSupport, runAsOtherMachine } from '../helpers/netns.js';

const ROOT = join(import.meta.dirname, '..', '..');
const OTHER_FP = FINGERPRINT === 'b'.repeat(64) ? 'c'.repeat(64) : 'b'.repeat(64);
const support = namespaceSupport(['mount']);
if (!support.ok) console.warn(`copied-client-on-another-device test skipped: ${support.reason}`);

describe('the edge refuses a device fingerprint other than the one certified', () => {
  let h: Harness;
  let tmp: string;
  const cleanups: Array<() => void> = [];

  beforeAll(async () => {
    h = await new Harness({ servers: {}, segments: [] }).start();
    tmp = await mkdtemp(join(tmpdir(), 'zcc-copied-'));
  });

  afterAll(async () => {
    for (const c of cleanups) c();
    await h?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const edgeRefusal = (mark: number) => (l: LogLine) =>
    h.logs.lines.indexOf(l) >= mark && l.component === 'edge' && l.level >= 40 && l.code === 'fingerprint-mismatch';

  it('tears the Z-Tunnel down with "fingerprint mismatch" logged, and the agent status says why', async () => {
    const mark = h.logs.lines.length;
    const client = new TunnelClient({
      tenant: 'acme',
      edge: h.cloud.tunnel,
      serverName: 'localhost',
      caPem: h.cloud.caPem,
      identity: h.identity,
      fingerprint: OTHER_FP,
      log: h.logs.log.child({ proc: 'copied-agent' }),
      backoff: new Backoff(60_000, 60_000),
    });
    cleanups.push(() => client.stop());
    const states: TunnelState[] = [];
    client.on('status', (s) => states.push(s.state));
    client.start();
    const status = await waitUntil(() => client.status.state === 'error' && client.status, 10_000, 'the copied agent to be refused');
    client.stop();

    const line = await h.logs.waitFor(edgeRefusal(mark));
    expect(line.msg).toMatch(/^Z-Tunnel refused: fingerprint mismatch: agent alice@acme\.test@test-device presented device fingerprint b{16}, but certificate [0-9a-f]+ was enrolled on device /);
    expect(line.msg).toContain(FINGERPRINT.slice(0, 16));
    expect(status.error).toBe(`refused by the edge: fingerprint-mismatch: ${line.msg.replace('Z-Tunnel refused: ', '')}`);
    expect(status.error).toContain('enroll again on this device');
    expect(states).not.toContain('connected');
    // Never served: no "Z-Tunnel up" for it, and the real agent's tunnel is untouched.
    expect(h.logs.lines.slice(mark).filter((l) => l.component === 'edge' && l.msg === 'Z-Tunnel up')).toEqual([]);
    expect(h.tenant.tunnel.status.state).toBe('connected');
  });

  it('refuses an agent whose hello carries no fingerprint at all', async () => {
    const mark = h.logs.lines.length;
    const [host, port] = h.cloud.tunnel.split(':') as [string, string];
    const socket = tls.connect({ host, port: Number(port), ...tunnelClientOptions(h.identity, h.cloud.caPem, 'localhost') });
    await once(socket, 'secureConnect');
    const session = ZTunnelSession.client(socket, { log: h.logs.log.child({ proc: 'old-agent' }), hello: makeHello('agent', CAPABILITIES, 'old-agent'), where: 'edge' });
    cleanups.push(() => session.destroy());
    const goaway = new Promise<string>((resolve) => session.h2.once('goaway', (_code, _last, data) => resolve(data?.toString('utf8') ?? '')));
    const segments: string[] = [];
    session.on('message', (m) => segments.push(m.type));

    expect(await goaway).toMatch(/^fingerprint-mismatch: fingerprint mismatch: agent alice@acme\.test@test-device presented no device fingerprint/);
    await waitUntil(() => session.closed, 10_000, 'the refused session to close');
    const line = await h.logs.waitFor(edgeRefusal(mark));
    expect(line.msg).toContain('presented no device fingerprint');
    expect(segments).not.toContain('segments');
  });

  it.skipIf(!support.ok)('refuses the copied key and certificate when used on another device (real namespace, other machine-id)', async () => {
    const file = join(tmp, 'copied-client.json');
    await writeFile(file, JSON.stringify({ edge: h.cloud.tunnel, caPem: h.cloud.caPem, keyPem: h.identity.keyPem, certPem: h.identity.certPem }), { mode: 0o600 });
    const dial = (machineId: string) =>
      runAsOtherMachine(machineId, { command: process.execPath, args: ['--import', 'tsx', join(ROOT, 'test', 'fixtures', 'dial-edge.ts'), file], cwd: ROOT, timeoutMs: 40_000 });

    const mark = h.logs.lines.length;
    const elsewhere = await dial('0123456789abcdef0123456789abcdef');
    expect(elsewhere.code, elsewhere.stderr).toBe(1);
    const verdict = JSON.parse(elsewhere.stdout) as { state: string; error: string };
    expect(verdict.state).toBe('error');
    expect(verdict.error).toMatch(/^refused by the edge: fingerprint-mismatch: fingerprint mismatch: /);
    await h.logs.waitFor(edgeRefusal(mark));

    // Control: the same copy, on the machine it was enrolled on, is let in.
    const home = await dial((await readFile('/etc/machine-id', 'utf8')).trim());
    expect(home.code, home.stderr).toBe(0);
    expect(JSON.parse(home.stdout)).toEqual({ state: 'connected' });
  });
});
