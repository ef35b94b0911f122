// The kernel intercept end to end in a network namespace: real curl, nc and dig against
// synthetic IPs, TPROXY to the agent's one listener, microtunnels through a reference cloud.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/log-capture.js';
import { nativePlaneUnavailable } from '../helpers/native-plane.js';
import { AgentFixture, Netns, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
if (skip) console.log(`SKIP test/intercept-kernel/tproxy: ${skip}`);
// Both data planes, pinned: the other suites run the default (auto: native where it builds).
const nativeSkip = skip ? undefined : nativePlaneUnavailable();
if (nativeSkip) console.log(`SKIP test/intercept-kernel/tproxy with the native data plane: ${nativeSkip}`);
const PLANES = nativeSkip ? (['node'] as const) : (['node', 'native'] as const);

// One ICMP echo request through a raw socket (no ping binary here); prints what came of it.
const ICMP_ECHO = [
  "import socket, struct, sys",
  "def csum(b):",
  "    b += bytes(len(b) % 2)",
  "    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))",
  "    t = (t >> 16) + (t & 0xffff)",
  "    return ~(t + (t >> 16)) & 0xffff",
  "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)",
  "s.settimeout(2)",
  "rest = struct.pack('!HH', 0x7a63, 1) + b'zcc'",
  "try:",
  "    s.sendto(struct.pack('!BBH', 8, 0, csum(struct.pack('!BBH', 8, 0, 0) + rest)) + rest, (sys.argv[1], 0))",
  "    data = s.recvfrom(2048)[0]",
  "    print('reply type', data[(data[0] & 15) * 4])",
  "except Exception as e:",
  "    print('refused', e)",
].join('\n');

const sha = (b: string | Buffer): string => createHash('sha256').update(typeof b === 'string' ? Buffer.from(b, 'latin1') : b).digest('hex');

describe.skipIf(!!skip).each(PLANES)('kernel intercept, TPROXY mode, in a network namespace, %s data plane', (dataPlane) => {
  let ns: Netns;
  let fixture: AgentFixture;
  let stateDir: string;
  const resolve = async (name: string): Promise<string> => {
    const r = await ns.run('dig', ['@127.0.0.1', '+short', '+tries=1', name]);
    const ip = r.stdout.trim();
    expect(ip, `dig ${name}: ${r.stderr}`).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
    return ip;
  };

  beforeAll(async () => {
    ns = await Netns.create();
    stateDir = await mkdtemp(join(tmpdir(), 'zcc-kstate-'));
    ({ fixture } = await AgentFixture.start(ns, { stateDir, dataPlane, timeouts: { udpIdleMs: 1500, tcpHalfClosedIdleMs: 1500 } }));
  });

  afterAll(async () => {
    await fixture?.stop();
    await ns?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('uses TPROXY with one listener and the local route, and refuses ICMP to the pool', async () => {
    const table = await ns.zccTable();
    expect(table).toMatch(/tproxy ip to 127\.0\.0\.1:\d+/);
    expect(table).toContain('reject with icmp admin-prohibited');
    expect(await ns.zccRoutes()).toMatch(/^local 100\.64\.0\.0\/10 dev lo .*src 127\.0\.0\.1/);
    const ping = await ns.run('python3', ['-c', ICMP_ECHO, await resolve('web.kern.test')]);
    if (ping.code === -1) console.log('SKIP the ICMP check: no python3');
    else expect(ping.stdout).toMatch(/^refused .*Operation not permitted/);
  });

  it('serves curl and nc at any port of a segment range (8000 and 8099), and port 80 of another app', async () => {
    const ip = await resolve('app.kern.test');
    const http = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8000/`]);
    expect(http.stderr).toBe('');
    expect(http.stdout).toBe('hello from 8000\n');
    const echo = await ns.run('nc', ['-N', '-w', '5', ip, '8099'], { input: 'hello at the top of the range\n' });
    expect(echo.stdout).toBe('hello at the top of the range\n');
    const web = await ns.run('curl', ['-sS', '-m', '10', `http://${await resolve('web.kern.test')}/`]);
    expect(web.stdout).toBe('hello from 8000\n');
  });

  it('resets a port outside the segments at once: after accept first, then in the kernel before the handshake', async () => {
    const ip = await resolve('gate.kern.test'); // no connection yet: the kernel knows nothing of its ports
    const first = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:9000/`]);
    // Reset by the listener right after the kernel's handshake: curl reports it as a failed
    // connect (7), a failed send of its request (55: seen once on a fresh clone), an empty
    // reply (52) or a reset (56), depending on when the RST lands.
    expect([7, 52, 55, 56]).toContain(first.code);
    expect(first.ms).toBeLessThan(3000);
    await waitUntil(async () => (await ns.run('nft', ['list', 'set', 'inet', 'zcc', 'gated'])).stdout.includes(ip), 5000, 'IP gated');
    const gated = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:9000/`]);
    expect(gated.code).toBe(7);
    expect(gated.stderr).toMatch(/Couldn't connect|Connection refused/);
    const ok = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8000/`]);
    expect(ok.stdout).toBe('hello from 8000\n');
    const unmapped = await ns.run('curl', ['-sS', '-m', '10', 'http://100.127.255.250:8000/']);
    expect(unmapped.code).not.toBe(0);
    expect(unmapped.ms).toBeLessThan(3000);
  });

  it('resets the client when the microtunnel fails (no server on that port)', async () => {
    const ip = await resolve('app.kern.test');
    const r = await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8077/`]);
    // The kernel completes the handshake, then the agent's RST follows within milliseconds. A
    // curl that checks its connect after the RST arrived reports it as a failed connect (7,
    // "Couldn't connect to server"; measured against a server that resets at once: 126 of 200),
    // one that checks before as a reset (56), an empty reply (52) or a failed send of its
    // request (55). Either way, not a hang.
    expect([7, 52, 55, 56]).toContain(r.code);
    expect(r.stderr).toMatch(/reset|Empty reply|Couldn't connect|Failed sending|Send failure/i);
    expect(r.ms).toBeLessThan(5000);
  });

  it('delivers early data in order: 1 MiB written while the microtunnel is still opening', async () => {
    const ip = await resolve('app.kern.test');
    await fixture.request({ type: 'delay', ms: 500 }, 'delay');
    try {
      const payload = randomBytes(1 << 20);
      const r = await ns.run('nc', ['-N', '-w', '10', ip, '8099'], { input: payload });
      expect(r.ms).toBeGreaterThanOrEqual(500);
      expect(r.stdout.length).toBe(payload.length);
      expect(sha(r.stdout)).toBe(sha(payload));
    } finally {
      await fixture.request({ type: 'delay', ms: 0 }, 'delay');
    }
  });

  it('carries half-close through the kernel path, and resets a half-closed connection idle past its limit', async () => {
    const ip = await resolve('app.kern.test');
    const payload = randomBytes(300 << 10);
    const echo = await ns.run('nc', ['-N', ip, '8099'], { input: payload });
    expect(echo.code).toBe(0);
    expect(sha(echo.stdout)).toBe(sha(payload));
    // The silent app never answers nor closes: after our FIN only the 1.5 s idle limit ends it.
    const silent = await ns.run('nc', ['-N', ip, '8050'], { input: 'anyone there?\n' });
    expect(silent.ms).toBeGreaterThanOrEqual(1400);
    expect(silent.ms).toBeLessThan(8000);
  });

  it('echoes UDP through a datagram microtunnel (nc -u), and ends the flow after its idle timeout', async () => {
    const ip = await resolve('app.kern.test');
    const r = await ns.run('nc', ['-u', '-w', '1', ip, '5300'], { input: 'ping over udp\n' });
    expect(r.stdout).toBe('ping over udp\n');
    await waitUntil(async () => (await fixture.request({ type: 'counters' }, 'counters')).udpFlows === 0, 8000, 'UDP flow closed by idle timeout');
  });
});
