// The measured agent of the `dns` benchmark (the `path` benchmark measures `zcc agent`'s runtime,
// world-runtime.ts), alone in its process (forked by bench/world.ts): the agent core with the
// identity the bench process enrolled, keeps one Z-Tunnel to its edge, and
// serves the SOCKS5 front end and, when asked, the DNS server, both on ephemeral loopback ports.
// Logs at `info` like the shipped agent, serialised by pino but written to /dev/null, so the
// per-connection log cost is paid and no disk is involved. Usage: world-agent.ts JSON (AgentArgs).
//
// Imports only agent code (no harness, no edge), so its memory is an agent's.
import { pino } from 'pino';
import { Agent } from '../src/agent/agent.js';
import { applyAgentHeapSettings } from '../src/agent/runtime/heap-settings.js';
import { DnsServer } from '../src/agent/dns/dns-server.js';
import { Socks5Server } from '../src/agent/intercept/socks5.js';
import { tierUpEarly } from '../src/common/jit-tiering.js';
import { createLogger } from '../src/common/log.js';
import type { TlsIdentity } from '../src/protocol/tls.js';
import { memoryReport, type AgentReady } from './agent-memory.js';
import type { CloudReady } from './world-cloud.js';

export interface AgentArgs {
  cloud: CloudReady;
  /**
   * The enrolled identity (key and chain), as an installed agent reads it from its sealed state
   * at start. Enrolling is done by the bench process beforehand: an agent that starts enrolled
   * never loads the PKI library (src/agent/identity/pki-loader.ts), and neither does this one.
   */
  identity: TlsIdentity;
  /** Start the DNS server on 127.0.0.1 with these upstream resolvers ("ip:port"). */
  dns?: { upstreams: string[] };
}

// As `zcc agent` does (src/cli/main.ts).
tierUpEarly();
const args = JSON.parse(process.argv[2] ?? '{}') as AgentArgs;
const log = createLogger({ name: 'zcc-bench-agent', level: 'info', destination: pino.destination({ dest: '/dev/null', sync: false }) });
const { cloud, identity } = args;
const agent = new Agent(log.child({ proc: 'agent' }));
// The heap settings `zcc agent` applies once started (src/cli/agent.ts).
applyAgentHeapSettings(() => agent.openMicrotunnels);
const tenant = agent.addTenant({ id: cloud.tenant, name: 'Bench', edge: cloud.tunnel, serverName: 'localhost', caPem: cloud.caPem, identity });
await tenant.tunnel.waitConnected();

const socks = new Socks5Server({ dialer: agent.dial, log: log.child({ proc: 'agent', front: 'socks5' }) });
const socksAddr = await socks.start({ host: '127.0.0.1', port: 0 });

let dns: DnsServer | undefined;
if (args.dns) {
  dns = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    pool: agent.pool,
    appFor: (name) => agent.appFor(name),
    reachability: (t, fqdn) => agent.reachable(t, fqdn),
    upstreams: args.dns.upstreams,
    // The per-client bound (2,000 q/s per client IP by default) would cap a one-address load
    // generator by design. Raised out of reach rather than turned off, so its bookkeeping is
    // still paid per query.
    rateLimit: { qps: 1e9, burst: 1e9 },
    logger: log.child({ proc: 'agent', component: 'dns' }),
  });
}
const dnsAddr = await dns?.start();

const ready: AgentReady = { type: 'agent', pid: process.pid, socksPort: socksAddr.port, ...(dnsAddr ? { dnsPort: dnsAddr.udp.port } : {}) };
process.send?.(ready);

process.on('message', (m: { type: string }) => {
  if (m.type === 'mem') process.send?.(memoryReport(socks.counters));
  // Diagnostics only (ZCC_BENCH_AGENT_NODE_ARGS=--expose-gc): a full collection before the next 'mem'.
  if (m.type === 'gc') (globalThis as { gc?: () => void }).gc?.();
  if (m.type === 'dns-stats') process.send?.({ type: 'dns-stats', stats: dns?.stats() });
  if (m.type === 'exit') {
    void (async () => {
      await socks.close();
      await dns?.close();
      agent.stop();
      process.exit(0);
    })();
  }
});
process.on('disconnect', () => process.exit(0));
