/**
 * The agent side of namespace.test.ts, run as its own process inside a network namespace and
 * a private mount namespace (so /etc/resolv.conf is the test's, never the machine's): the
 * real DnsServer on 127.0.1.53:53 with a fake app list, and the OS takeover pointing the
 * libc resolver at it. Speaks JSON lines on stdout; logs go to stderr.
 *
 *   node --import tsx fixture-agent.ts <stateDir>
 */
import { DnsServer } from '../../src/agent/dns/dns-server.js';
import { takeOverSystemDns, DEFAULT_AGENT_DNS } from '../../src/agent/dns/os-resolver/index.js';
import { SyntheticPool } from '../../src/agent/ipam/synthetic-pool.js';
import { routeName } from '../../src/agent/tenants/tenant-router.js';
import { createLogger } from '../../src/common/log.js';
import { AppSegment } from '../../src/protocol/segments.js';

const stateDir = process.argv[2];
if (!stateDir) throw new Error('usage: fixture-agent.ts <stateDir>');
const log = createLogger({ name: 'fixture-agent', level: 'debug' });
const emit = (e: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(e)}\n`);

const appDomains = ['intranet.demo.internal', '*.apps.demo.internal'];
const tenants = [{ id: 'demo', segments: [AppSegment.parse({ id: 's1', name: 'apps', domains: appDomains, tcpPorts: [{ from: 80, to: 80 }] })] }];
const dns = new DnsServer({
  host: DEFAULT_AGENT_DNS,
  port: 53,
  pool: new SyntheticPool(),
  appFor: (name) => {
    const r = routeName(tenants, name);
    return r && { tenant: r.tenant.id };
  },
  reachability: async () => true,
  searchDomains: ['demo.internal'],
  logger: log.child({ component: 'dns' }),
});
await dns.start();

const takeover = await takeOverSystemDns({
  stateDir,
  agentAddress: DEFAULT_AGENT_DNS,
  appDomains,
  searchDomains: ['demo.internal'],
  log,
  onUpstreams: (upstreams) => {
    dns.setUpstreams(upstreams);
    emit({ event: 'upstreams', upstreams });
  },
  pollMs: Number(process.env.ZCC_TEST_DNS_POLL_MS ?? 5_000),
});
emit({ event: 'ready', manager: takeover.manager, upstreams: takeover.upstreams });

process.once('SIGTERM', () => {
  void (async () => {
    await takeover.release();
    const stats = dns.stats();
    await dns.close();
    emit({ event: 'released', stats });
    process.exit(0);
  })();
});
