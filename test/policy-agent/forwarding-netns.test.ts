// The forwarding profile end to end: `zcc demo` (cloud, connector, apps and the agent runtime)
// in a network namespace whose /etc/resolv.conf is its own. The tenant is switched to
// `untrusted-only` and the trusted network defined by a search domain, by editing the agent's
// config file as IT would; then rewriting resolv.conf (what DHCP does on joining a network)
// turns tunnelling off and back on, checked with real traffic through the agent.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/common/localapi-schema.js';
import { waitUntil } from '../helpers/log-capture.js';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';
import { Netns, netnsUnavailable } from '../intercept-kernel/netns.js';

const skip = await netnsUnavailable();
if (skip) console.log(`SKIP test/policy-agent/forwarding-netns: ${skip}`);

const UNTRUSTED = 'nameserver 192.0.2.53\nsearch coffee-shop.example\n';
const TRUSTED = 'nameserver 192.0.2.53\nsearch corp.example\n';

describe.skipIf(!!skip)('forwarding profile untrusted-only, trusted network by search domain, real traffic', { timeout: 180_000 }, () => {
  let ns: Netns;
  let resolvConf: string;
  let dataDir: string;
  let demo: ZccProcess | undefined;

  const curl = () => ns.run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', demo!.ready.socks as string, 'http://intranet.demo.internal/']);
  const status = async (): Promise<AgentStatus> => JSON.parse((await ns.must(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'zcc'), 'status', '--json', '--data-dir', dataDir]))) as AgentStatus;

  beforeAll(async () => {
    ns = await Netns.create();
    resolvConf = await ns.ownResolvConf(UNTRUSTED);
    dataDir = await mkdtemp(join(tmpdir(), 'zcc-fwd-'));
    demo = await spawnZcc(['demo', '--headless', '--socks', '127.0.0.1:0', '--http-proxy', '127.0.0.1:0', '--data-dir', dataDir], {}, 120_000, ['ip', 'netns', 'exec', ns.name]);
  }, 180_000);

  afterAll(async () => {
    await demo?.stop('SIGTERM');
    await ns?.destroy();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('tunnels while the profile says always', async () => {
    expect((await curl()).stdout).toContain('demo intranet');
    expect((await status()).tenants[0]!.forwarding).toMatchObject({ profile: 'always', action: 'tunnel' });
  });

  it('picks up the new profile and criteria from the config file while running', async () => {
    const file = join(dataDir, 'agent', 'config.json');
    const cfg = JSON.parse(await readFile(file, 'utf8')) as { tenants: Array<Record<string, unknown>>; trustedNetwork?: unknown };
    cfg.tenants[0]!.forwardingProfile = 'untrusted-only';
    cfg.trustedNetwork = { searchDomains: ['corp.example'] };
    await writeFile(file, JSON.stringify(cfg, null, 2));
    const st = await waitUntil(async () => {
      const s = await status();
      return s.tenants[0]!.forwarding?.profile === 'untrusted-only' && s;
    }, 30_000, 'profile applied');
    expect(st.network).toMatchObject({ type: 'untrusted', matched: [] });
    expect(st.tenants[0]!.forwarding!.action).toBe('tunnel');
    expect((await curl()).stdout).toContain('demo intranet');
  });

  it('stops tunnelling on the trusted network and resumes when it is left', async () => {
    await writeFile(resolvConf, TRUSTED);
    const trusted = await waitUntil(async () => {
      const s = await status();
      return s.network?.type === 'trusted' && s;
    }, 30_000, 'trusted network detected');
    expect(trusted.network!.matched).toEqual(['searchDomains']);
    expect(trusted.tenants[0]).toMatchObject({ connection: 'disconnected', forwarding: { action: 'direct' } });
    const refused = await curl();
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).not.toContain('demo intranet');

    await writeFile(resolvConf, UNTRUSTED);
    await waitUntil(async () => (await status()).tenants[0]!.connection === 'connected', 30_000, 'tunnel back on');
    expect((await curl()).stdout).toContain('demo intranet');
  });
});
