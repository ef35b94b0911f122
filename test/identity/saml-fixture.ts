import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { deviceFingerprint } from '../../src/agent/identity/fingerprint.js';
import { enrollWithTicket, reauthenticate } from '../../src/agent/identity/login-enroll.js';
import { loginWithBrowser, type LoginTicket } from '../../src/agent/identity/login.js';
import { TunnelClient } from '../../src/agent/tunnel/tunnel-client.js';
import { CloudConfig } from '../../src/edge/cloud-config.js';
import { startCloud, type RunningCloud } from '../../src/edge/cloud.js';
import { Connector } from '../../src/edge/connector/connector.js';
import { ConnectorConfig } from '../../src/edge/connector/connector-config.js';
import { Backoff } from '../../src/protocol/backoff.js';
import type { TlsIdentity } from '../../src/protocol/tls.js';
import { LogCapture, waitUntil } from '../helpers/log-capture.js';
import { ScriptedBrowser } from './saml-browser.js';

export const TENANT = 'acme';
/** The device fingerprint the edge expects in hello: this machine's. */
export const FP = deviceFingerprint();

/** Sends `text` through an open microtunnel to the echo server and waits for it to come back. */
export async function echo(stream: Duplex, text: string): Promise<string> {
  let got = '';
  const done = new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      got += d.toString('utf8');
      if (got.length >= text.length) {
        stream.off('data', onData);
        resolve(got);
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
  stream.write(text);
  return done;
}

export interface DemoUserSpec {
  user: string;
  password: string;
  groups: string[];
}

/** alice is an engineer, bob in sales; passwords random per run so the log check means something. */
export function demoUsers(): Record<'alice' | 'bob', DemoUserSpec> {
  return {
    alice: { user: 'alice@acme.test', password: `pw-${randomBytes(12).toString('hex')}`, groups: ['engineering', 'staff'] },
    bob: { user: 'bob@acme.test', password: `pw-${randomBytes(12).toString('hex')}`, groups: ['sales'] },
  };
}

export interface SamlCloudOptions {
  /** "name:port" → "127.0.0.1:port", served by one connector. */
  servers: Record<string, string>;
  segments: Array<{ id: string; name: string; domains: string[]; tcpPorts: Array<{ from: number; to: number }> }>;
  rules: Array<{ id: string; name: string; action: 'allow' | 'deny'; groups?: string[]; segments?: string[] }>;
  authTimeoutSeconds?: number;
}

/**
 * The reference cloud with the demo IdP for tenant acme (alice, bob), one connector, and the
 * agent's side of the SAML login driven through a ScriptedBrowser — all in this process over
 * real sockets.
 */
export class SamlCloud {
  readonly logs = new LogCapture('saml');
  readonly users = demoUsers();
  browser!: ScriptedBrowser;
  readonly tickets: string[] = [];
  cloud!: RunningCloud;
  dataDir!: string;
  private readonly cleanups: Array<() => Promise<void> | void> = [];
  private readonly provisioningKey = randomBytes(24).toString('base64url');

  constructor(private readonly opts: SamlCloudOptions) {}

  async start(): Promise<this> {
    this.dataDir = await mkdtemp(join(tmpdir(), 'zcc-saml-'));
    const cfg = CloudConfig.parse({
      name: 'saml-edge',
      dataDir: join(this.dataDir, 'cloud'),
      listen: { tunnel: '127.0.0.1:0', enroll: '127.0.0.1:0', idp: '127.0.0.1:0' },
      tenants: [
        {
          id: TENANT,
          name: 'Acme',
          segments: this.opts.segments.map((s) => ({ ...s, connectorGroups: ['dc'] })),
          connectorGroups: [{ id: 'dc', provisioningKeys: [this.provisioningKey] }],
          policy: { rules: this.opts.rules },
          idp: { demoUsers: Object.values(this.users) },
          ...(this.opts.authTimeoutSeconds ? { authTimeoutSeconds: this.opts.authTimeoutSeconds } : {}),
        },
      ],
    });
    this.cloud = await startCloud(cfg, this.logs.log.child({ proc: 'cloud' }));
    this.browser = new ScriptedBrowser(this.cloud.caPem);
    const connector = new Connector(
      ConnectorConfig.parse({
        name: 'conn-1',
        dataDir: join(this.dataDir, 'conn-1'),
        cloud: { tunnel: this.cloud.tunnel, enroll: this.cloud.enroll, serverName: 'localhost', caPem: this.cloud.caPem },
        provisioningKey: this.provisioningKey,
        staticServers: this.opts.servers,
      }),
      this.logs.log.child({ proc: 'conn-1' }),
    );
    await connector.start();
    this.cleanups.push(() => connector.stop());
    await waitUntil(() => this.cloud.dispatcher.list().some((h) => h.id === 'conn-1'), 10_000, 'connector registered');
    return this;
  }

  get endpoint(): { enroll: string; serverName: string; caPem: string } {
    return { enroll: this.cloud.enroll, serverName: 'localhost', caPem: this.cloud.caPem };
  }

  /** The agent's login (loopback listener + PKCE) with the scripted browser as "system browser". */
  async login(who: DemoUserSpec, password = who.password): Promise<LoginTicket> {
    const ticket = await loginWithBrowser({
      ...this.endpoint,
      tenant: TENANT,
      log: this.logs.log.child({ proc: 'agent' }),
      openUrl: async (url) => void (await this.browser.login(url, who.user, password)),
      timeoutMs: 20_000,
    });
    this.tickets.push(ticket.ticket);
    return ticket;
  }

  /** Login, then enrollment with the ticket: the agent's first start on a new device. */
  async enroll(who: DemoUserSpec, device: string): Promise<TlsIdentity & { identityUri: string }> {
    const { ticket } = await this.login(who);
    return enrollWithTicket({ ...this.endpoint, tenant: TENANT, ticket, device, fingerprint: FP });
  }

  /** Login again and re-authenticate the enrolled device, applying the new expiry to `tunnel`. */
  async reauth(who: DemoUserSpec, identity: TlsIdentity, tunnel?: TunnelClient): Promise<string> {
    const { ticket } = await this.login(who);
    const res = await reauthenticate({ ...this.endpoint, identity, ticket, fingerprint: FP, tunnel });
    return res.authExpiresAt;
  }

  /** A connected Z-Tunnel for an enrolled identity. */
  async tunnel(identity: TlsIdentity, label: string): Promise<TunnelClient> {
    const client = new TunnelClient({
      tenant: TENANT,
      edge: this.cloud.tunnel,
      serverName: 'localhost',
      caPem: this.cloud.caPem,
      identity,
      log: this.logs.log.child({ proc: label }),
      backoff: new Backoff(200, 1_000),
    });
    this.cleanups.push(() => client.stop());
    client.start();
    await client.waitConnected();
    return client;
  }

  /** Every secret the login flows handled: none may appear in any captured log line. */
  secrets(): string[] {
    // What identifies an assertion: its signature value and its ID.
    const assertions = this.browser.seen.samlResponses.flatMap((r) => {
      const xml = Buffer.from(r, 'base64').toString('utf8');
      return [/<ds:SignatureValue>([^<]+)</.exec(xml)?.[1] ?? '', /<saml:Assertion [^>]*ID="([^"]+)"/.exec(xml)?.[1] ?? ''];
    });
    return [...Object.values(this.users).map((u) => u.password), ...this.browser.seen.samlResponses, ...this.browser.seen.codes, ...this.tickets, ...assertions].filter((s) => s.length >= 16);
  }

  async stop(): Promise<void> {
    for (const c of this.cleanups.reverse()) await c();
    await this.cloud?.close();
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** The usual world of these tests: the echo app `eng.acme.test:7`, allowed to group engineering. */
export function engEchoCloud(appPort: number, authTimeoutSeconds?: number): SamlCloud {
  return new SamlCloud({
    servers: { 'eng.acme.test:7': `127.0.0.1:${appPort}` },
    segments: [{ id: 'eng', name: 'Engineering tools', domains: ['eng.acme.test'], tcpPorts: [{ from: 7, to: 7 }] }],
    rules: [{ id: 'eng', name: 'engineering', action: 'allow', groups: ['engineering'] }],
    authTimeoutSeconds,
  });
}
