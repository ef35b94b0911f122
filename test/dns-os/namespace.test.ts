import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JOURNAL_FILE } from '../../src/agent/dns/os-resolver/journal.js';
import { parseResolvConf } from '../../src/agent/dns/os-resolver/resolv-conf.js';
import { AgentProc, NetNs, skipReason } from './ns.js';

/**
 * The takeover as the libc resolver sees it: getent and dig (no @server) inside the agent's
 * namespaces read the agent's /etc/resolv.conf, ask the agent on 127.0.1.53:53, and get
 * synthetic IPs for apps and dnsmasq's answers for everything else. /etc is an overlay whose
 * upper layer is a temp dir (see ns.ts); the machine's own resolv.conf is checked untouched.
 */

const SKIP = skipReason();
if (SKIP) console.warn(`SKIP test/dns-os/namespace.test.ts: ${SKIP}`);

const UP_A = '10.53.0.1';
const UP_B = '10.53.0.2';
const ORIGINAL = '# written by dhclient\nnameserver 10.53.0.1\nsearch corp.test\noptions edns0 timeout:2\n';

describe.skipIf(!!SKIP)('OS DNS takeover in a network + mount namespace', () => {
  let ns: NetNs;
  let real: { bytes: Buffer; ino: number; mtimeMs: number };
  const agents: AgentProc[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    const st = await stat('/etc/resolv.conf');
    real = { bytes: await readFile('/etc/resolv.conf'), ino: st.ino, mtimeMs: st.mtimeMs };
    ns = await NetNs.create([UP_A, UP_B]);
    // Two upstreams that give the same name different answers, so a test can tell which was asked.
    await ns.startDnsmasq(UP_A, 'corp.test', [['web.corp.test', '192.0.2.10']]);
    await ns.startDnsmasq(UP_B, 'corp.test', [['web.corp.test', '192.0.2.20']]);
  });

  afterEach(async () => {
    for (const a of agents.splice(0)) {
      a.kill('SIGKILL');
      await a.exited;
    }
  });

  afterAll(async () => {
    await ns?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    const st = await stat('/etc/resolv.conf');
    expect({ bytes: await readFile('/etc/resolv.conf'), ino: st.ino, mtimeMs: st.mtimeMs }).toEqual(real);
  });

  /** A temp /etc upper layer holding resolv.conf = ORIGINAL, and a state dir. */
  async function world() {
    const dir = await mkdtemp(join(tmpdir(), 'zcc-dnsos-'));
    dirs.push(dir);
    const w = { upper: join(dir, 'upper'), work: join(dir, 'work'), stateDir: join(dir, 'state') };
    await mkdir(w.upper);
    await mkdir(w.work);
    const file = join(w.upper, 'resolv.conf');
    await writeFile(file, ORIGINAL);
    await chmod(file, 0o644);
    return { ...w, dir, file };
  }

  function start(w: { upper: string; work: string; stateDir: string }, extra: { bindFile?: string; readOnlyEtc?: boolean } = {}): AgentProc {
    const a = new AgentProc(ns, { ...w, ...extra });
    agents.push(a);
    return a;
  }

  const getent = async (a: AgentProc, name: string) => (await a.inside(['getent', 'hosts', name])).stdout.trim().split(/\s+/)[0];

  it('plain file: libc resolves apps through the agent and the rest through the previous upstream; exit restores byte for byte', async () => {
    const w = await world();
    const agent = start(w);
    const ready = await agent.waitEvent((e) => e.event === 'ready');
    expect(ready).toMatchObject({ manager: 'direct', upstreams: [UP_A] });

    const taken = parseResolvConf(await readFile(w.file, 'utf8'));
    expect(taken.nameservers).toEqual(['127.0.1.53']);
    expect(taken.search).toEqual(['corp.test', 'demo.internal']);
    expect(taken.options).toEqual(['edns0 timeout:2']);

    expect(await getent(agent, 'intranet.demo.internal')).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./);
    // dig without @server reads /etc/resolv.conf; +search completes the short name.
    const short = await agent.inside(['dig', '+search', '+short', '+tries=1', '+time=3', 'intranet']);
    expect(short.stdout.trim()).toBe(await getent(agent, 'intranet.demo.internal'));
    expect(await getent(agent, 'web.corp.test')).toBe('192.0.2.10');
    expect(await getent(agent, 'web')).toBe('192.0.2.10'); // search corp.test kept

    await agent.stop();
    const stats = agent.events.find((e) => e.event === 'released')?.stats as { answeredApp: number; forwarded: number } | undefined;
    expect(stats?.answeredApp).toBeGreaterThan(0);
    expect(stats?.forwarded).toBeGreaterThan(0);
    expect(await readFile(w.file, 'utf8')).toBe(ORIGINAL);
    expect((await stat(w.file)).mode & 0o7777).toBe(0o644);
    await expect(stat(join(w.stateDir, JOURNAL_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('crash: after SIGKILL the file is still taken over; the next start restores from the journal first and exits clean', async () => {
    const w = await world();
    const first = start(w);
    await first.waitEvent((e) => e.event === 'ready');
    first.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(parseResolvConf(await readFile(w.file, 'utf8')).nameservers).toEqual(['127.0.1.53']);
    expect((await stat(join(w.stateDir, JOURNAL_FILE))).mode & 0o777).toBe(0o600);

    const second = start(w);
    const ready = await second.waitEvent((e) => e.event === 'ready');
    expect(second.stderr).toContain('dns: restored from journal');
    // Learned from the restored original, not from the leftover naming the agent (a loop).
    expect(ready.upstreams).toEqual([UP_A]);
    expect(await getent(second, 'web.corp.test')).toBe('192.0.2.10');
    expect((await second.stop()).code).toBe(0);
    expect(await readFile(w.file, 'utf8')).toBe(ORIGINAL);
  });

  it('overwrite: a DHCP-style rewrite is re-applied and its nameserver becomes the upstream', async () => {
    const w = await world();
    const agent = start(w);
    await agent.waitEvent((e) => e.event === 'ready');
    expect(await getent(agent, 'web.corp.test')).toBe('192.0.2.10');

    const dhcp = '# written by dhclient (renewed)\nnameserver 10.53.0.2\nsearch corp.test\n';
    const write = await agent.inside(['sh', '-c', `printf '%s' '${dhcp}' > /etc/resolv.conf.dhclient-new && mv -f /etc/resolv.conf.dhclient-new /etc/resolv.conf`]);
    expect(write.code).toBe(0);
    // The 5 s poll is the deadline's basis; the directory watch usually makes it immediate.
    await agent.waitEvent((e) => e.event === 'upstreams' && (e.upstreams as string[])[0] === UP_B, 8_000, 'new upstreams');
    await expect.poll(async () => parseResolvConf(await readFile(w.file, 'utf8')).nameservers, { timeout: 8_000 }).toEqual(['127.0.1.53']);
    expect(agent.stderr).toContain('changed by someone else');
    expect(await getent(agent, 'web.corp.test')).toBe('192.0.2.20');
    expect(await getent(agent, 'intranet.demo.internal')).toMatch(/^100\./);

    await agent.stop();
    // What is restored is the newest configuration someone else wrote, not the stale original.
    expect(await readFile(w.file, 'utf8')).toBe(dhcp);
  });

  it.each([
    ['container-style bind-mounted resolv.conf', false],
    ['ProtectSystem=strict with ReadWritePaths=/etc/resolv.conf (read-only /etc)', true],
  ])('%s: rewritten in place and restored byte for byte', async (_name, readOnlyEtc) => {
    const w = await world();
    const bindFile = join(w.dir, 'bind-resolv.conf');
    await writeFile(bindFile, ORIGINAL);
    await chmod(bindFile, 0o644);
    const agent = start(w, { bindFile, readOnlyEtc });
    await agent.waitEvent((e) => e.event === 'ready');
    expect(agent.stderr).toContain('rewriting it in place');
    expect(parseResolvConf(await readFile(bindFile, 'utf8')).nameservers).toEqual(['127.0.1.53']);
    expect(await getent(agent, 'intranet.demo.internal')).toMatch(/^100\./);
    expect(await getent(agent, 'web.corp.test')).toBe('192.0.2.10');
    await agent.stop();
    expect(await readFile(bindFile, 'utf8')).toBe(ORIGINAL);
    expect(await readFile(w.file, 'utf8')).toBe(ORIGINAL);
  });
});
