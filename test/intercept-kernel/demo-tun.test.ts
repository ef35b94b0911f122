// `zcc demo --tun` as a user runs it on a machine (here: a network namespace whose
// /etc/resolv.conf is its own): the OS resolver points at the agent and the kernel hands every
// flow to a synthetic IP to it, so plain `curl http://intranet.demo.internal/` works, and
// stopping the demo puts resolv.conf, routes and rules back exactly.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';
import { Netns, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
if (skip) console.log(`SKIP test/intercept-kernel/demo-tun: ${skip}`);

const ORIGINAL = '# the network\'s resolver (unreachable here; only app names are asked)\nnameserver 192.0.2.53\nsearch example.org\n';

describe.skipIf(!!skip)('zcc demo --tun: intercept mode and the OS resolver on the whole machine', { timeout: 180_000 }, () => {
  let ns: Netns;
  let resolvConf: string;
  let dataDir: string;
  let demo: ZccProcess | undefined;

  beforeAll(async () => {
    ns = await Netns.create();
    // The demo and every client below see the namespace's own resolver configuration.
    resolvConf = await ns.ownResolvConf(ORIGINAL);
    dataDir = await mkdtemp(join(tmpdir(), 'zcc-demo-tun-'));
    demo = await spawnZcc(['demo', '--tun', '--headless', '--socks', '127.0.0.1:0', '--http-proxy', '127.0.0.1:0', '--data-dir', dataDir], {}, 120_000, ['ip', 'netns', 'exec', ns.name]);
  }, 180_000);

  afterAll(async () => {
    await demo?.stop('SIGKILL');
    await ns?.destroy();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('reports the intercept and the OS resolver manager in READY', () => {
    expect(demo!.ready.tun).toMatchObject({ cidr: '100.64.0.0/10' });
    expect(demo!.ready.osDns).toBe('direct');
    expect(demo!.ready.dns).toBe('127.0.1.53:53');
  });

  it('serves plain curl by app name, with no proxy setting, through the OS resolver', async () => {
    expect(await readFile(resolvConf, 'utf8')).toMatch(/^nameserver 127\.0\.1\.53$/m);
    const hosts = await ns.run('getent', ['hosts', 'intranet.demo.internal']);
    expect(hosts.stdout).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+\s+intranet\.demo\.internal/);
    const page = await ns.run('curl', ['-sS', '--max-time', '20', 'http://intranet.demo.internal/']);
    expect(page.stderr).toBe('');
    expect(page.stdout).toContain('demo intranet');
    // A wildcard app on its own port, resolved the same way.
    const wild = await ns.run('curl', ['-sS', '--max-time', '20', 'http://wiki.apps.demo.internal:8080/']);
    expect(wild.stdout).toContain('wiki.apps.demo.internal');
  });

  it('completes a short name with the search domain', async () => {
    const page = await ns.run('curl', ['-sS', '--max-time', '20', 'http://intranet/']);
    expect(page.stdout).toContain('demo intranet');
  });

  it('puts resolv.conf back byte for byte and removes its table and routes on SIGTERM', async () => {
    expect(await demo!.stop('SIGTERM')).toBe(0);
    demo = undefined;
    expect(await readFile(resolvConf, 'utf8')).toBe(ORIGINAL);
    expect(await ns.zccTable()).toBeUndefined();
    expect(await ns.zccRoutes()).toBe('');
  });
});
