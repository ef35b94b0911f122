import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentTenant } from '../../src/agent/agent.js';
import { deviceFingerprint } from '../../src/agent/identity/fingerprint.js';
import { enrollWithToken } from '../../src/agent/identity/token-enroll.js';
import { CloudConfig, type TenantConfig } from '../../src/edge/cloud-config.js';
import { startCloud, type RunningCloud } from '../../src/edge/cloud.js';
import { Connector } from '../../src/edge/connector/connector.js';
import { ConnectorConfig } from '../../src/edge/connector/connector-config.js';
import type { TlsIdentity } from '../../src/protocol/tls.js';
import { LogCapture, waitUntil } from './log-capture.js';

/**
 * The fingerprint enrolled into test certificates: this machine's, because the agent presents
 * the fingerprint of the device it runs on and the edge refuses any other.
 */
export const FINGERPRINT = deviceFingerprint();

export interface HarnessOptions {
  /** Connector static servers: "name:port" → "127.0.0.1:port". */
  servers: Record<string, string>;
  segments: Array<Omit<TenantConfig['segments'][number], 'connectorGroups' | 'multimatch' | 'drEnabled' | 'udpPorts'> & { udpPorts?: [] }>;
  connectors?: number;
  keepaliveMs?: number;
  tenantId?: string;
  /** Which data plane the connectors run (ConnectorConfig.dataPlane): node unless asked, so tests may reach into it. */
  connectorDataPlane?: 'auto' | 'node' | 'native';
  /** ConnectorConfig.resolveCacheMs of the connectors. */
  connectorResolveCacheMs?: number;
}

/** A whole reference cloud, connectors and an enrolled agent in this process, over real sockets. */
/** One app, echo.acme.test on port 7, served by an echo server on `port` (helpers/servers.ts). */
export function echoApp(port: number): HarnessOptions {
  return {
    servers: { 'echo.acme.test:7': `127.0.0.1:${port}` },
    segments: [{ id: 'echo', name: 'Echo', domains: ['echo.acme.test'], tcpPorts: [{ from: 7, to: 7 }] }],
  };
}

export class Harness {
  readonly logs = new LogCapture('harness');
  readonly connectors: Connector[] = [];
  cloud!: RunningCloud;
  agent!: Agent;
  tenant!: AgentTenant;
  identity!: TlsIdentity;
  dataDir!: string;
  readonly provisioningKey = randomBytes(24).toString('base64url');
  readonly token = randomBytes(24).toString('base64url');

  constructor(readonly opts: HarnessOptions) {}

  get tenantId(): string {
    return this.opts.tenantId ?? 'acme';
  }

  async start(): Promise<this> {
    this.dataDir = await mkdtemp(join(tmpdir(), 'zcc-test-'));
    const cfg = CloudConfig.parse({
      name: 'test-edge',
      dataDir: join(this.dataDir, 'cloud'),
      listen: { tunnel: '127.0.0.1:0', enroll: '127.0.0.1:0' },
      tenants: [
        {
          id: this.tenantId,
          name: 'Acme',
          segments: this.opts.segments.map((s) => ({ ...s, connectorGroups: ['dc'] })),
          connectorGroups: [{ id: 'dc', provisioningKeys: [this.provisioningKey] }],
          policy: { rules: [{ id: 'all', name: 'everyone in staff', action: 'allow', groups: ['staff'] }] },
          enrollmentTokens: [{ token: this.token, user: 'alice@acme.test', groups: ['staff'] }],
        },
      ],
    });
    this.cloud = await startCloud(cfg, this.logs.log.child({ proc: 'cloud' }), { keepaliveMs: this.opts.keepaliveMs });
    for (let i = 0; i < (this.opts.connectors ?? 1); i++) await this.addConnector(`conn-${i + 1}`);
    this.identity = await enrollWithToken({
      tenant: this.tenantId,
      token: this.token,
      device: 'test-device',
      fingerprint: FINGERPRINT,
      enroll: this.cloud.enroll,
      serverName: 'localhost',
      caPem: this.cloud.caPem,
    });
    this.agent = new Agent(this.logs.log.child({ proc: 'agent' }));
    this.tenant = this.agent.addTenant({
      id: this.tenantId,
      name: 'Acme',
      edge: this.cloud.tunnel,
      serverName: 'localhost',
      caPem: this.cloud.caPem,
      identity: this.identity,
      keepaliveMs: this.opts.keepaliveMs,
    });
    await this.tenant.tunnel.waitConnected();
    return this;
  }

  async addConnector(name: string): Promise<Connector> {
    const c = new Connector(
      ConnectorConfig.parse({
        name,
        dataDir: join(this.dataDir, name),
        cloud: { tunnel: this.cloud.tunnel, enroll: this.cloud.enroll, serverName: 'localhost', caPem: this.cloud.caPem },
        provisioningKey: this.provisioningKey,
        staticServers: this.opts.servers,
        dataPlane: this.opts.connectorDataPlane ?? 'node',
        resolveCacheMs: this.opts.connectorResolveCacheMs,
      }),
      this.logs.log.child({ proc: name }),
    );
    await c.start();
    this.connectors.push(c);
    await waitUntil(() => this.cloud.dispatcher.list().some((h) => h.id === name), 10_000, `${name} registered at the edge`);
    return c;
  }

  async stop(): Promise<void> {
    this.agent?.stop();
    for (const c of this.connectors) await c.stop();
    await this.cloud?.close();
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}
