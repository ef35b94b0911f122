import http2 from 'node:http2';
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
import { verifyDeviceFingerprint, verifyPeer, type PeerRefusal, type TenantTrust } from './peer-verify.js';

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
      const remote = `${socket.remoteAddress}:${socket.remotePort}`;
      // Node checks the client certificate once the handshake is done and, as rejectUnauthorized
      // asks, drops the peer without an alert: all that surfaces is a "socket hang up" here, with
      // OpenSSL's verdict (e.g. CERT_HAS_EXPIRED) left on the socket.
      const verdict = (socket as tls.TLSSocket).authorizationError as unknown as string | null | undefined;
      if (verdict) {
        deps.log.warn({ remote, code: String(verdict) }, `Z-Tunnel handshake refused: client certificate rejected: ${describeVerifyCode(String(verdict))} (${String(verdict)})`);
        return;
      }
      const e = err as NodeJS.ErrnoException & { reason?: string };
      const why =
        e.code === 'ECONNRESET'
          ? 'peer hung up during the handshake'
          : e.code === 'ERR_SSL_UNSUPPORTED_PROTOCOL'
            ? 'unsupported protocol: only TLS 1.3 is accepted'
            : (e.reason ?? err.message.trim());
      deps.log.warn({ remote, code: e.code }, `Z-Tunnel handshake refused: ${why}`);
    });
    for (const id of deps.tenants.keys()) this.counters.set(id, { microtunnelsOpened: 0, microtunnelsRefused: 0, bytesUp: 0, bytesDown: 0 });
  }

  /** Microtunnels open on all Z-Tunnels of this edge, agents' and connectors' (0 once all closed). */
  get openMicrotunnels(): number {
    let n = 0;
    for (const s of this.sessions) n += s.openMicrotunnels;
    return n;
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
      log.warn({ remote, code: check.code }, `Z-Tunnel refused: ${check.reason}`);
      refuse(socket, check);
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
    if (id.kind === 'client') {
      // An agent's device fingerprint arrives in its hello; it is served only once that matches
      // the certificate (microtunnels before hello are refused by the session anyway).
      void session.ready().then((hello) => {
        const mismatch = verifyDeviceFingerprint(id, hello.fingerprint);
        if (mismatch) {
          slog.warn({ code: mismatch.code, serial: id.serial }, `Z-Tunnel refused: ${mismatch.reason}`);
          refuseSession(session, mismatch);
          return;
        }
        slog.info({ serial: id.serial }, 'Z-Tunnel up');
        serveAgent(session, {
          log: slog,
          tenant,
          identity: id,
          auth: () => this.deps.auth(id.tenant, id.device),
          dispatcher: this.deps.dispatcher,
          counters: this.counters.get(id.tenant)!,
          edgeName: this.deps.name,
        });
      }, () => undefined);
      return;
    }
    slog.info({ serial: id.serial }, 'Z-Tunnel up');
    const handle: ConnectorHandle = { id: id.connector, tenant: id.tenant, group: id.group, session, active: 0, reportedActive: 0 };
    session.on('message', (m) => {
      if (m.type === 'health') handle.reportedActive = m.activeMicrotunnels;
    });
    void session.ready().then(() => this.deps.dispatcher.register(handle), () => undefined);
    session.on('close', () => this.deps.dispatcher.unregister(handle));
  }
}

/** OpenSSL verify codes a refused client most likely hit, in words for the log. */
function describeVerifyCode(code: string): string {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'certificate has expired';
    case 'CERT_NOT_YET_VALID':
      return 'certificate is not yet valid';
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'not issued under the root of any tenant of this edge';
    case 'CERT_SIGNATURE_FAILURE':
      return 'certificate signature does not verify';
    default:
      return 'certificate does not verify';
  }
}

/**
 * Hangs up on a peer whose certificate passed TLS (so it chains to one of our tenant roots) but
 * not the edge's checks. It is told why in the HTTP/2 GOAWAY's debug data, taking the HTTP/2 role
 * it expects, so an agent can show "revoked" instead of a bare disconnect.
 */
function refuse(socket: tls.TLSSocket, refusal: PeerRefusal): void {
  if (!refusal.role) {
    socket.destroy();
    return;
  }
  const h2 = refusal.role === 'client' ? http2.performServerHandshake(socket) : http2.connect('http://ztunnel.invalid', { createConnection: () => socket });
  h2.on('error', () => undefined);
  const timer = setTimeout(() => socket.destroy(), 5_000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  goawayWith(h2, refusal);
  h2.close();
}

/**
 * refuse() for a Z-Tunnel whose session is already up (an agent's fingerprint comes in its
 * hello): an `error` control message and the GOAWAY's debug data both carry the reason, so the
 * agent can show it, then the session is closed.
 */
function refuseSession(session: ZTunnelSession, refusal: PeerRefusal): void {
  session.send({ type: 'error', code: refusal.code, message: refusal.reason.slice(0, 1024) });
  goawayWith(session.h2, refusal);
  const timer = setTimeout(() => session.destroy(), 5_000);
  timer.unref();
  session.once('close', () => clearTimeout(timer));
  session.close();
}

/** The GOAWAY an agent turns into its status line: `<code>: <reason>` in the debug data. */
function goawayWith(h2: http2.Http2Session, refusal: PeerRefusal): void {
  h2.goaway(http2.constants.NGHTTP2_INADEQUATE_SECURITY, 0, Buffer.from(`${refusal.code}: ${refusal.reason}`.slice(0, 512)));
}
