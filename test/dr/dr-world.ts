import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentTenant } from '../../src/agent/agent.js';
import { DrController } from '../../src/agent/dr/dr-controller.js';
import { enrollWithToken } from '../../src/agent/identity/token-enroll.js';
import { findDnsmasq, startDnsmasq, type RunningDrDns } from '../../src/cli/demo-dr-dns.js';
import { CloudConfig } from '../../src/edge/cloud-config.js';
import { startCloud, type RunningCloud } from '../../src/edge/cloud.js';
import { Connector } from '../../src/edge/connector/connector.js';
import { ConnectorConfig } from '../../src/edge/connector/connector-config.js';
import { PseConfig } from '../../src/edge/pse/pse-config.js';
import { startPse, type RunningPse } from '../../src/edge/pse/pse.js';
import { encodeDrRecord, toTxtStrings, type DrRecord } from '../../src/protocol/dr-record.js';
import { FINGERPRINT } from '../helpers/harness.js';
import { LogCapture, waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';

export const DR_DOMAIN = 'dr.acme.test';
/** Tests poll fast; production polls every 4 minutes. */
export const POLL_MS = 200;
export const DNSMASQ = findDnsmasq();

/**
 * A tenant with one DR-designated app and one ordinary app, served by a cloud and by a private
 * service edge; one connector linked to both; an enrolled agent following the DR domain on a
 * real dnsmasq. Everything in this process except dnsmasq, over real sockets.
 */
export class DrWorld {
  readonly logs = new LogCapture('agent-cloud');
  readonly pseLogs = new LogCapture('pse');
  readonly key = generateKeyPairSync('ed25519');
  dataDir!: string;
  echo!: TestServer;
  cloud!: RunningCloud;
  pse!: RunningPse;
  dns!: RunningDrDns;
  connector!: Connector;
  agent!: Agent;
  tenant!: AgentTenant;
  dr!: DrController;
  mainPort!: number;

  async start(): Promise<this> {
    this.dataDir = await mkdtemp(join(tmpdir(), 'zcc-dr-'));
    this.echo = await echoServer();
    const provisioningKey = randomBytes(24).toString('base64url');
    const token = randomBytes(24).toString('base64url');
    const log = this.logs.log;
    this.cloud = await startCloud(
      CloudConfig.parse({
        name: 'main-edge',
        dataDir: join(this.dataDir, 'cloud'),
        listen: { tunnel: '127.0.0.1:0', enroll: '127.0.0.1:0' },
        tenants: [
          {
            id: 'acme',
            name: 'Acme',
            segments: [
              { id: 'payroll', name: 'Payroll (DR)', domains: ['payroll.acme.test'], tcpPorts: [{ from: 7, to: 7 }], drEnabled: true, connectorGroups: ['dc'] },
              { id: 'wiki', name: 'Wiki', domains: ['wiki.acme.test'], tcpPorts: [{ from: 7, to: 7 }], connectorGroups: ['dc'] },
            ],
            connectorGroups: [{ id: 'dc', provisioningKeys: [provisioningKey], drEnabled: true }],
            policy: { rules: [{ id: 'staff', name: 'staff', action: 'allow', groups: ['staff'] }] },
            enrollmentTokens: [{ token, user: 'alice@acme.test', groups: ['staff'] }],
          },
        ],
      }),
      log.child({ proc: 'cloud' }),
    );
    this.mainPort = Number(this.cloud.tunnel.split(':')[1]);
    const identity = await enrollWithToken({ tenant: 'acme', token, device: 'laptop-1', fingerprint: FINGERPRINT, enroll: this.cloud.enroll, serverName: 'localhost', caPem: this.cloud.caPem });

    // Exported while the cloud is healthy, after the enrollment: the bundle has the assertion.
    const exp = await this.cloud.exportDr({ name: 'pse-1', serverNames: ['localhost', '127.0.0.1'] });
    const pubFile = join(this.dataDir, 'dr.pub.pem');
    const publicKeyPem = this.key.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    await writeFile(pubFile, publicKeyPem);
    this.dns = await startDnsmasq({ domain: DR_DOMAIN, txt: [], a: ['127.0.0.1'] });
    this.pse = await startPse(
      PseConfig.parse({ name: 'pse-1', listen: '127.0.0.1:0', bundleFile: '-', keyFile: '-', dr: { domain: DR_DOMAIN, resolvers: [this.dns.address], publicKeyFile: pubFile, pollMs: POLL_MS, lookupTimeoutMs: 500 } }),
      this.pseLogs.log,
      { bundle: exp.bundle, keyPem: exp.keyPem },
    );

    this.connector = new Connector(
      ConnectorConfig.parse({
        name: 'conn-1',
        dataDir: join(this.dataDir, 'conn-1'),
        cloud: { tunnel: this.cloud.tunnel, enroll: this.cloud.enroll, serverName: 'localhost', caPem: this.cloud.caPem },
        provisioningKey,
        staticServers: { 'payroll.acme.test:7': `127.0.0.1:${this.echo.port}`, 'wiki.acme.test:7': `127.0.0.1:${this.echo.port}` },
        dr: { pseAddresses: [this.pse.tunnel] },
      }),
      log.child({ proc: 'conn-1' }),
    );
    await this.connector.start();
    await waitUntil(() => this.pse.dispatcher.list().some((h) => h.id === 'conn-1'), 10_000, 'connector registered at the PSE');

    this.agent = new Agent(log.child({ proc: 'agent' }));
    this.dr = new DrController({
      log: log.child({ proc: 'agent' }),
      tenants: { acme: { serverName: 'localhost', settings: { domain: DR_DOMAIN, resolvers: [this.dns.address], publicKeyPem, pollMs: POLL_MS, lookupTimeoutMs: 500, psePort: Number(this.pse.tunnel.split(':')[1]) } } },
    });
    this.tenant = this.agent.addTenant({ id: 'acme', name: 'Acme', edge: this.cloud.tunnel, serverName: 'localhost', caPem: this.cloud.caPem, identity });
    this.dr.attach('acme', this.tenant.tunnel);
    this.dr.start();
    await this.tenant.tunnel.waitConnected();
    return this;
  }

  /** A record signed by `key` (default: the DR key) as TXT records, in `parts` parts. */
  record(b: DrRecord['b'], opts: { key?: ReturnType<typeof generateKeyPairSync>['privateKey']; parts?: number; t?: number; x?: number } = {}): string[] {
    const now = Math.floor(Date.now() / 1000) * 1000;
    const r: DrRecord = { v: '1', b, k: 'zpa', m: 'fo', t: new Date(opts.t ?? now - 1000), x: new Date(opts.x ?? now + 3_600_000) };
    return encodeDrRecord(r, { privateKey: opts.key ?? this.key.privateKey, parts: opts.parts });
  }

  /** Restarts dnsmasq with these TXT records (none: the record is missing). */
  async publish(records: string[]): Promise<void> {
    await this.dns.publish({ domain: DR_DOMAIN, txt: records.map(toTxtStrings), a: ['127.0.0.1'] });
  }

  /** Sends a line through a microtunnel and returns the echo. */
  async echoVia(host: string): Promise<string> {
    const stream = await this.agent.dial({ host, port: 7 });
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise<void>((resolve, reject) => {
      stream.once('end', resolve);
      stream.once('error', reject);
    });
    stream.end(`hello ${host}`);
    await ended;
    return Buffer.concat(chunks).toString();
  }

  /** Waits until the agent's Z-Tunnel is up on `edge`. */
  async connectedTo(edge: string, timeoutMs = 15_000): Promise<void> {
    await waitUntil(() => this.tenant.tunnel.status.state === 'connected' && this.tenant.tunnel.status.edge === edge, timeoutMs, `agent connected to ${edge} (now ${JSON.stringify(this.tenant.tunnel.status)})`);
  }

  async stop(): Promise<void> {
    this.dr?.stop();
    this.agent?.stop();
    await this.connector?.stop();
    await this.pse?.close();
    await this.cloud?.close();
    await this.dns?.close();
    await this.echo?.close();
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}
