import { mkdtemp, mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from '../common/log.js';
import { Agent } from '../agent/agent.js';
import { deviceFingerprint } from '../agent/identity/fingerprint.js';
import { enrollWithToken } from '../agent/identity/token-enroll.js';
import { HttpConnectServer } from '../agent/intercept/http-connect.js';
import { Socks5Server } from '../agent/intercept/socks5.js';
import { KernelIntercept } from '../agent/intercept/kernel/kernel-intercept.js';
import { DnsServer } from '../agent/dns/dns-server.js';
import { systemResolvers } from '../agent/dns/system-resolvers.js';
import { AgentService } from '../agent/service.js';
import { parseHostPort } from '../protocol/tls.js';
import { startDemoApps, type DemoApps } from './demo-apps.js';
import { markDrSegments, startDemoDr } from './demo-dr.js';
import { startUi } from './ui-launch.js';
import { startDemoTenant, type DemoTenant, type DemoTenantSpec } from './demo-tenant.js';

export interface DemoOptions {
  dataDir?: string;
  socks?: string;
  httpProxy?: string;
  /** Agent DNS listener; unset means no DNS (the OS is never touched by the demo without --tun). */
  dns?: string;
  /** Intercept mode: every port of every synthetic IP through the kernel (Linux, root); names via --dns. */
  tun?: boolean;
  /** Adds the second tenant `partner` with its own cloud, connector and wiki. */
  partner?: boolean;
  /** Disaster recovery: DR domain on a local DNS server, a private service edge, DR apps. */
  dr?: boolean;
  /** Where to serve the UI for a browser when Electron is absent; `headless` turns the UI off. */
  ui?: string;
  headless?: boolean;
  log: Logger;
}

export interface RunningDemo {
  ready: Record<string, unknown>;
  stop(): Promise<void>;
}

export const DEMO_USER = 'alice@demo.internal';

function demoSpec(apps: DemoApps): DemoTenantSpec {
  return {
    id: 'demo',
    name: 'Demo Corp',
    user: DEMO_USER,
    groups: ['staff'],
    segments: [
      { id: 'intranet', name: 'Intranet', domains: ['intranet.demo.internal'], tcpPorts: [{ from: 80, to: 80 }] },
      { id: 'echo', name: 'Echo', domains: ['echo.demo.internal'], tcpPorts: [{ from: 7, to: 7 }] },
      { id: 'apps', name: 'Apps', domains: ['*.apps.demo.internal'], tcpPorts: [{ from: 8080, to: 8080 }] },
    ],
    servers: {
      'intranet.demo.internal:80': `127.0.0.1:${apps.intranet}`,
      'echo.demo.internal:7': `127.0.0.1:${apps.echo}`,
      '*.apps.demo.internal:8080': `127.0.0.1:${apps.apps}`,
    },
  };
}

/** `--partner`: a second organisation with its own cloud, connector and wiki. */
function partnerSpec(apps: DemoApps): DemoTenantSpec {
  return {
    id: 'partner',
    name: 'Partner Inc',
    user: 'alice@partner.internal',
    groups: ['contractors'],
    segments: [{ id: 'wiki', name: 'Partner wiki', domains: ['wiki.partner.internal'], tcpPorts: [{ from: 80, to: 80 }] }],
    servers: { 'wiki.partner.internal:80': `127.0.0.1:${apps.partnerWiki}` },
  };
}

/** `zcc demo`: cloud, connector, demo apps and an enrolled agent, all on this machine. */
export async function startDemo(opts: DemoOptions): Promise<RunningDemo> {
  const { log } = opts;
  const dataDir = resolve(opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'zcc-demo-'))));
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const stops: Array<() => Promise<void> | void> = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const apps = await startDemoApps();
    stops.push(() => apps.close());

    const fingerprint = deviceFingerprint();
    const agent = new Agent(log.child({ proc: 'agent' }));
    stops.push(() => agent.stop());
    const specs = [demoSpec(apps), ...(opts.partner ? [partnerSpec(apps)] : [])];
    if (opts.dr) markDrSegments(specs[0]!);
    const tenants: DemoTenant[] = [];
    for (const spec of specs) {
      const t = await startDemoTenant(spec, dataDir, log);
      stops.push(() => t.stop());
      tenants.push(t);
      const identity = await enrollWithToken({
        tenant: spec.id,
        token: t.token,
        device: `${hostname()}-demo`,
        fingerprint,
        enroll: t.cloud.enroll,
        serverName: 'localhost',
        caPem: t.cloud.caPem,
      });
      agent.addTenant({ id: spec.id, name: spec.name, edge: t.cloud.tunnel, serverName: 'localhost', caPem: t.cloud.caPem, identity });
    }
    await Promise.all(agent.tenants.map((t) => t.tunnel.waitConnected()));
    // After enrollment, so the DR bundle carries this device's assertion.
    const dr = opts.dr ? await startDemoDr({ agent, tenant: tenants[0]!, dataDir, log }) : undefined;
    if (dr) stops.push(() => dr.stop());
    const agentDir = join(dataDir, 'agent');
    await mkdir(agentDir, { recursive: true, mode: 0o700 });
    const service = new AgentService({
      agent,
      log: log.child({ proc: 'agent' }),
      socketPath: join(agentDir, 'localapi.sock'),
      stateDir: agentDir,
      fingerprintHash: fingerprint,
      syntheticIps: (t) => agent.syntheticIps(t),
      enroll: (req) =>
        enrollWithToken({ tenant: req.tenant, token: req.token, device: `${hostname()}-demo`, fingerprint, enroll: req.enroll, serverName: req.serverName, caPem: req.caPem }),
    });
    await service.start();
    stops.push(() => service.stop());

    const socks = new Socks5Server({ dialer: agent.dial, log: log.child({ proc: 'agent', front: 'socks5' }) });
    const socksAddr = await socks.start(parseHostPort(opts.socks ?? '127.0.0.1:1080', '--socks'));
    stops.push(() => socks.close());
    const httpProxy = new HttpConnectServer({ dialer: agent.dial, log: log.child({ proc: 'agent', front: 'http-connect' }) });
    const httpAddr = await httpProxy.start(parseHostPort(opts.httpProxy ?? '127.0.0.1:3128', '--http-proxy'));
    stops.push(() => httpProxy.close());

    let dnsAddr: string | undefined;
    if (opts.dns) {
      const { host, port } = parseHostPort(opts.dns, '--dns');
      const dns = new DnsServer({
        host,
        port,
        pool: agent.pool,
        appFor: (name) => agent.appFor(name),
        reachability: (t, fqdn) => agent.reachable(t, fqdn),
        upstreams: await systemResolvers(),
        searchDomains: ['demo.internal'],
        logger: log.child({ proc: 'agent', component: 'dns' }),
      });
      const bound = await dns.start();
      stops.push(() => dns.close());
      dnsAddr = `${bound.udp.address}:${bound.udp.port}`;
    }

    // --tun: the kernel hands every flow to a synthetic IP to the agent, no proxy setting needed.
    let tun: unknown;
    if (opts.tun) {
      const intercept = new KernelIntercept({ agent, log: log.child({ proc: 'agent' }), stateDir: agentDir });
      tun = await intercept.start();
      stops.push(() => intercept.stop());
    }

    let uiUrl: string | undefined;
    if (!opts.headless) {
      const ui = await startUi({ listen: parseHostPort(opts.ui ?? '127.0.0.1:0', '--ui'), socketPath: join(agentDir, 'localapi.sock'), outDir: join(dataDir, 'ui'), log });
      stops.push(() => ui.close());
      uiUrl = ui.url;
    }

    return {
      ready: {
        ...(dr ? { dr: dr.ready } : {}),
        ui: uiUrl,
        dns: dnsAddr,
        ...(tun ? { tun } : {}),
        dataDir,
        localApi: join(agentDir, 'localapi.sock'),
        socks: `${socksAddr.address}:${socksAddr.port}`,
        httpProxy: `${httpAddr.address}:${httpAddr.port}`,
        edge: tenants[0]!.cloud.tunnel,
        enroll: tenants[0]!.cloud.enroll,
        tenants: tenants.map((t) => ({ id: t.spec.id, edge: t.cloud.tunnel, user: t.spec.user })),
        apps: [
          'http://intranet.demo.internal/',
          'echo.demo.internal:7',
          'http://<any>.apps.demo.internal:8080/',
          ...(opts.partner ? ['http://wiki.partner.internal/'] : []),
        ],
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
