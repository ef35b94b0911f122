// The measured agent of the `path` and `dns` benchmarks, alone in its process (forked by
// bench/world.ts): enrolls with the bench cloud's token, keeps one Z-Tunnel to its edge, and
// serves the SOCKS5 front end and, when asked, the DNS server, both on ephemeral loopback ports.
// Logs at `info` like the shipped agent, serialised by pino but written to /dev/null, so the
// per-connection log cost is paid and no disk is involved. Usage: world-agent.ts JSON (AgentArgs).
//
// Imports only agent code (no harness, no edge), so its memory is an agent's.
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import { pino } from 'pino';
import { Agent } from '../src/agent/agent.js';
import { applyAgentHeapSettings } from '../src/agent/runtime/heap-settings.js';
import { DnsServer } from '../src/agent/dns/dns-server.js';
import { Socks5Server } from '../src/agent/intercept/socks5.js';
import { createLogger } from '../src/common/log.js';
import type { TlsIdentity } from '../src/protocol/tls.js';
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

export interface AgentReady {
  type: 'agent';
  pid: number;
  socksPort: number;
  dnsPort?: number;
}

export interface AgentMemory {
  type: 'mem';
  /** From /proc/self/status, in KiB. */
  vmRssKiB: number;
  vmHwmKiB: number;
  heapUsed: number;
  /** V8 heap committed (used + free space V8 holds on to). */
  heapTotal: number;
  /** Committed size of each V8 heap space (new_space, old_space, ...), bytes. */
  heapSpaces: Record<string, number>;
  external: number;
  arrayBuffers: number;
  socks: { active: number; established: number; accepted: number; failed: number };
}

// The heap settings `zcc agent` applies at start (src/cli/agent.ts).
applyAgentHeapSettings();
const args = JSON.parse(process.argv[2] ?? '{}') as AgentArgs;
const log = createLogger({ name: 'zcc-bench-agent', level: 'info', destination: pino.destination({ dest: '/dev/null', sync: false }) });
const { cloud, identity } = args;
const agent = new Agent(log.child({ proc: 'agent' }));
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

function statusKiB(status: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'mem') {
    const status = readFileSync('/proc/self/status', 'utf8');
    const mu = process.memoryUsage();
    const c = socks.counters;
    const failed = Object.values(c.failed).reduce((a, b) => a + b, 0);
    const mem: AgentMemory = {
      type: 'mem',
      vmRssKiB: statusKiB(status, 'VmRSS'),
      vmHwmKiB: statusKiB(status, 'VmHWM'),
      heapUsed: mu.heapUsed,
      heapTotal: mu.heapTotal,
      heapSpaces: Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name, sp.space_size])),
      external: mu.external,
      arrayBuffers: mu.arrayBuffers,
      socks: { active: c.active, established: c.established, accepted: c.accepted, failed },
    };
    process.send?.(mem);
  }
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
