import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../common/log.js';
import { makeHello } from '../../protocol/control-channel.js';
import { ZTunnelSession } from '../../protocol/session.js';
import { tunnelServerOptions, type TlsIdentity } from '../../protocol/tls.js';
import { CAPABILITIES } from '../../protocol/version.js';
import type { TenantConfig } from '../cloud-config.js';
import type { ConnectorHandle, Dispatcher } from '../dispatcher/dispatcher.js';
import { serveAgent, type AuthRecord, type EdgeCounters } from './agent-handler.js';
import { verifyPeer, type TenantTrust } from './peer-verify.js';

export interface EdgeServerDeps {
  name: string;
  log: Logger;
  identity: TlsIdentity;
  tenants: Map<string, { config: TenantConfig; trust: TenantTrust }>;
  dispatcher: Dispatcher;
  auth: (tenant: string, device: string) => AuthRecord | undefined;
  /** Keepalive of every Z-Tunnel; tests shorten it to see dead peers quickly. */
  keepaliveMs?: number;
}

/**
 * The service edge's Z-Tunnel listener: one TLS 1.3 port for agents and connectors alike, told
 * apart by the identity their certificate proves.
 */
export class EdgeServer {
  private readonly server: tls.Server;
  private readonly sessions = new Set<ZTunnelSession>();
  readonly counters = new Map<string, EdgeCounters>();

  constructor(private readonly deps: EdgeServerDeps) {
    const roots = [...deps.tenants.values()].map((t) => t.trust.rootPem);
    this.server = tls.createServer(tunnelServerOptions(deps.identity, roots), (socket) => this.onConnection(socket));
    this.server.on('tlsClientError', (err, socket) => {
      deps.log.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}`, code: (err as NodeJS.ErrnoException).code }, `Z-Tunnel handshake refused: ${err.message}`);
    });
    for (const id of deps.tenants.keys()) this.counters.set(id, { microtunnelsOpened: 0, microtunnelsRefused: 0, bytesUp: 0, bytesDown: 0 });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sessions) s.destroy();
    await closed;
  }

  private onConnection(socket: tls.TLSSocket): void {
    const { log } = this.deps;
    socket.setNoDelay(true);
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const check = verifyPeer(socket, (t) => this.deps.tenants.get(t)?.trust);
    if (!check.ok) {
      log.warn({ remote }, `Z-Tunnel refused: ${check.reason}`);
      socket.destroy();
      return;
    }
    const id = check.identity;
    const tenant = this.deps.tenants.get(id.tenant)!.config;
    const who = id.kind === 'client' ? `agent ${id.user}@${id.device}` : `connector ${id.connector}`;
    const slog = log.child({ tenant: id.tenant, peer: who, remote });
    const opts = { log: slog, hello: makeHello('edge', CAPABILITIES, `zcc-edge ${this.deps.name}`), where: `${id.tenant} ${who}`, keepaliveMs: this.deps.keepaliveMs };
    // Agents open microtunnels towards us (we are the HTTP/2 server); towards connectors we open
    // them, so we take the HTTP/2 client role on the socket the connector dialled.
    const session = id.kind === 'client' ? ZTunnelSession.server(socket, opts) : ZTunnelSession.client(socket, opts);
    this.sessions.add(session);
    session.on('close', (err) => {
      this.sessions.delete(session);
      slog.info({ err: err?.message }, 'Z-Tunnel closed');
    });
    slog.info({ serial: id.serial }, 'Z-Tunnel up');
    if (id.kind === 'client') {
      serveAgent(session, {
        log: slog,
        tenant,
        identity: id,
        auth: () => this.deps.auth(id.tenant, id.device),
        dispatcher: this.deps.dispatcher,
        counters: this.counters.get(id.tenant)!,
        edgeName: this.deps.name,
      });
      return;
    }
    const handle: ConnectorHandle = { id: id.connector, tenant: id.tenant, group: id.group, session, active: 0, reportedActive: 0 };
    session.on('message', (m) => {
      if (m.type === 'health') handle.reportedActive = m.activeMicrotunnels;
    });
    void session.ready().then(() => this.deps.dispatcher.register(handle), () => undefined);
    session.on('close', () => this.deps.dispatcher.unregister(handle));
  }
}
