import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from '../common/log.js';
import { Agent } from '../agent/agent.js';
import { deviceFingerprint } from '../agent/identity/fingerprint.js';
import { enrollWithToken } from '../agent/identity/token-enroll.js';
import { HttpConnectServer } from '../agent/intercept/http-connect.js';
import { Socks5Server } from '../agent/intercept/socks5.js';
import { DnsServer } from '../agent/dns/dns-server.js';
import { systemResolvers } from '../agent/dns/system-resolvers.js';
import { AgentService } from '../agent/service.js';
import { CloudConfig, type CloudConfigInput } from '../edge/cloud-config.js';
import { startCloud } from '../edge/cloud.js';
import { Connector } from '../edge/connector/connector.js';
import { ConnectorConfig } from '../edge/connector/connector-config.js';
import { parseHostPort } from '../protocol/tls.js';
import { startDemoApps } from './demo-apps.js';

export interface DemoOptions {
  dataDir?: string;
  socks?: string;
  httpProxy?: string;
  /** Agent DNS listener; unset means no DNS (the OS is never touched by the demo without --tun). */
  dns?: string;
  log: Logger;
}

export interface RunningDemo {
  ready: Record<string, unknown>;
  stop(): Promise<void>;
}

export const DEMO_USER = 'alice@demo.internal';

/** The demo tenant: the contract's three apps and a policy that lets the demo user reach them. */
function demoCloudConfig(dataDir: string, provisioningKey: string, token: string): CloudConfigInput {
  return {
    name: 'demo-edge',
    dataDir: join(dataDir, 'cloud'),
    listen: { tunnel: '127.0.0.1:0', enroll: '127.0.0.1:0' },
    tenants: [
      {
        id: 'demo',
        name: 'Demo Corp',
        segments: [
          { id: 'intranet', name: 'Intranet', domains: ['intranet.demo.internal'], tcpPorts: [{ from: 80, to: 80 }], connectorGroups: ['demo-dc'] },
          { id: 'echo', name: 'Echo', domains: ['echo.demo.internal'], tcpPorts: [{ from: 7, to: 7 }], connectorGroups: ['demo-dc'] },
          { id: 'apps', name: 'Apps', domains: ['*.apps.demo.internal'], tcpPorts: [{ from: 8080, to: 8080 }], connectorGroups: ['demo-dc'] },
        ],
        connectorGroups: [{ id: 'demo-dc', provisioningKeys: [provisioningKey] }],
        policy: { matchMode: 'first-match', rules: [{ id: 'staff', name: 'Staff reach demo apps', action: 'allow', groups: ['staff'] }] },
        enrollmentTokens: [{ token, user: DEMO_USER, groups: ['staff'] }],
      },
    ],
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

    const provisioningKey = randomBytes(24).toString('base64url');
    const token = randomBytes(24).toString('base64url');
    const cloudCfg = CloudConfig.parse(demoCloudConfig(dataDir, provisioningKey, token));
    await writeFile(join(dataDir, 'cloud.json'), JSON.stringify(cloudCfg, null, 2), { mode: 0o600 });
    const cloud = await startCloud(cloudCfg, log.child({ proc: 'cloud' }));
    stops.push(() => cloud.close());

    const connector = new Connector(
      ConnectorConfig.parse({
        name: 'demo-connector-1',
        dataDir: join(dataDir, 'connector-1'),
        cloud: { tunnel: cloud.tunnel, enroll: cloud.enroll, serverName: 'localhost', caFile: cloud.caFile },
        provisioningKey,
        staticServers: {
          'intranet.demo.internal:80': `127.0.0.1:${apps.intranet}`,
          'echo.demo.internal:7': `127.0.0.1:${apps.echo}`,
          '*.apps.demo.internal:8080': `127.0.0.1:${apps.apps}`,
        },
      }),
      log.child({ proc: 'connector' }),
    );
    await connector.start();
    stops.push(() => connector.stop());

    const device = `${hostname()}-demo`;
    const fingerprint = deviceFingerprint();
    const identity = await enrollWithToken({
      tenant: 'demo',
      token,
      device,
      fingerprint,
      enroll: cloud.enroll,
      serverName: 'localhost',
      caPem: cloud.caPem,
    });
    const agent = new Agent(log.child({ proc: 'agent' }));
    stops.push(() => agent.stop());
    const tenant = agent.addTenant({ id: 'demo', name: 'Demo Corp', edge: cloud.tunnel, serverName: 'localhost', caPem: cloud.caPem, identity });
    await tenant.tunnel.waitConnected();
    const agentDir = join(dataDir, 'agent');
    await mkdir(agentDir, { recursive: true, mode: 0o700 });
    const service = new AgentService({
      agent,
      log: log.child({ proc: 'agent' }),
      socketPath: join(agentDir, 'localapi.sock'),
      stateDir: agentDir,
      fingerprintHash: fingerprint,
      syntheticIps: (t) => agent.syntheticIps(t),
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

    return {
      ready: {
        dns: dnsAddr,
        dataDir,
        localApi: join(agentDir, 'localapi.sock'),
        socks: `${socksAddr.address}:${socksAddr.port}`,
        httpProxy: `${httpAddr.address}:${httpAddr.port}`,
        edge: cloud.tunnel,
        enroll: cloud.enroll,
        tenant: 'demo',
        user: DEMO_USER,
        apps: ['http://intranet.demo.internal/', 'echo.demo.internal:7', 'http://<any>.apps.demo.internal:8080/'],
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
