import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Logger } from '../../common/log.js';
import { Backoff } from '../../protocol/backoff.js';
import { makeHello } from '../../protocol/control-channel.js';
import { ENROLL_PATHS, postEnroll } from '../../protocol/enroll-api.js';
import { DatagramChannel } from '../../protocol/datagram.js';
import { createCsr, generateKeyPair } from '../../protocol/pki.js';
import { ZTunnelSession, type IncomingMicrotunnel } from '../../protocol/session.js';
import { splice } from '../../protocol/splice.js';
import { parseHostPort, tunnelClientOptions, type TlsIdentity } from '../../protocol/tls.js';
import { CAPABILITIES } from '../../protocol/version.js';
import { chooseDataPlane, type DataplaneStats } from '../../../native/dataplane/dataplane-process.js';
import { pinnedCa, type ConnectorConfig } from './connector-config.js';
import { NativeConnectorPlane } from './native-connector-plane.js';
import type { EdgeLink } from './native-edge-link.js';
import { TargetResolver } from './target-resolver.js';

/**
 * The app connector: dials out to the edge (it never listens), enrolls once with a provisioning
 * key, then serves microtunnels by dialling the real servers itself and answers the
 * dispatcher's probes.
 */
export class Connector {
  private session: EdgeLink | null = null;
  /** The native data plane (`dataPlane` native, or auto where it builds): it carries the Z-Tunnel and every microtunnel. */
  private plane: NativeConnectorPlane | null = null;
  private stopped = false;
  private readonly resolver: TargetResolver;
  private readonly backoff = new Backoff();
  private active = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly upstreams = new Set<net.Socket>();
  /** Settles start(): the first Z-Tunnel up, or a certificate the edge can never accept. */
  private firstUp: { resolve: () => void; reject: (e: Error) => void } | null = null;
  /** Links to private service edges (DR-designated connector): a Connector each, on our identity. */
  private readonly pseLinks: Connector[] = [];

  constructor(
    private readonly cfg: ConnectorConfig,
    private readonly log: Logger,
  ) {
    this.resolver = new TargetResolver(cfg.staticServers);
  }

  /** Enrolls if needed and connects; resolves once the first Z-Tunnel is up. */
  async start(): Promise<void> {
    const identity = await this.ensureEnrolled();
    const plane = chooseDataPlane(this.cfg.dataPlane, (why) => this.log.warn({ why }, 'native data plane unavailable: microtunnels are carried by Node'));
    if (plane === 'native') this.plane = await NativeConnectorPlane.start(this.cfg, this.resolver, this.log);
    this.startPseLinks();
    await new Promise<void>((resolve, reject) => {
      this.firstUp = { resolve, reject };
      this.connect(identity);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.session?.destroy();
    for (const s of this.upstreams) s.destroy();
    await Promise.all([...this.pseLinks.map((l) => l.stop()), this.plane?.stop()]);
  }

  /** Microtunnels being served and server connections held (both 0 once every one has closed). */
  get tracked(): { microtunnels: number; upstreams: number } {
    return { microtunnels: this.active, upstreams: this.upstreams.size };
  }

  /** The native data plane's counters (`dataPlane: 'native'`), else undefined. */
  dataPlaneStats(): Promise<DataplaneStats> | undefined {
    return this.plane?.stats();
  }

  /** Whether the Z-Tunnel to each private service edge of `dr.pseAddresses` is up, in order. */
  get pseConnected(): boolean[] {
    return this.pseLinks.map((l) => l.connected);
  }

  /**
   * DR: one more Z-Tunnel per PSE, started before the cloud's is awaited, since during DR the
   * cloud may never answer. Each is a Connector on the enrolled identity with the PSE as its
   * edge, so serving and probing are the same code; each retries on its own.
   */
  private startPseLinks(): void {
    for (const address of this.cfg.dr?.pseAddresses ?? []) {
      const cloud = { ...this.cfg.cloud, tunnel: address, serverName: this.cfg.dr?.serverName ?? this.cfg.cloud.serverName };
      const link = new Connector({ ...this.cfg, cloud, dr: undefined }, this.log.child({ pse: address }));
      this.pseLinks.push(link);
      link.start().catch((err: unknown) => this.log.error({ pse: address, err: (err as Error).message }, 'Z-Tunnel to private service edge failed'));
    }
  }

  get connected(): boolean {
    return !!this.session && !this.session.closed;
  }

  private async ensureEnrolled(): Promise<TlsIdentity> {
    const dir = this.cfg.dataDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keyFile = join(dir, 'connector.key.pem');
    const certFile = join(dir, 'connector.chain.pem');
    if (existsSync(keyFile) && existsSync(certFile)) {
      return { keyPem: await readFile(keyFile, 'utf8'), certPem: await readFile(certFile, 'utf8') };
    }
    if (!this.cfg.provisioningKey) throw new Error(`connector ${this.cfg.name} is not enrolled and has no provisioningKey`);
    const keys = await generateKeyPair();
    const csr = await createCsr({ keys, subject: { commonName: this.cfg.name } });
    const res = await postEnroll(
      this.cfg.cloud.enroll,
      ENROLL_PATHS.connector,
      { provisioningKey: this.cfg.provisioningKey, name: this.cfg.name, csr },
      pinnedCa(this.cfg),
      this.cfg.cloud.serverName,
    );
    await writeFile(keyFile, keys.privateKeyPem, { mode: 0o600 });
    await writeFile(certFile, res.certChainPem, { mode: 0o644 });
    this.log.info({ tenant: res.tenant, identity: res.identityUri }, 'connector enrolled');
    return { keyPem: keys.privateKeyPem, certPem: res.certChainPem };
  }

  private connect(identity: TlsIdentity): void {
    if (this.stopped) return;
    if (this.plane) return void this.connectNative(identity, this.plane);
    const { host, port } = parseHostPort(this.cfg.cloud.tunnel, 'cloud.tunnel');
    const socket = tls.connect({ host, port, ...tunnelClientOptions(identity, pinnedCa(this.cfg), this.cfg.cloud.serverName) });
    socket.setNoDelay(true);
    socket.once('error', (err) => this.retry(identity, err, isCertificateError(err)));
    socket.once('secureConnect', () => {
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      const session = ZTunnelSession.server(socket, { log: this.log, hello: this.hello(), where: `edge ${this.cfg.cloud.tunnel}` });
      session.on('microtunnel', (m) => void this.serve(m));
      let refusal: string | undefined;
      session.h2.once('goaway', (code, _last, data) => {
        if (code !== http2.constants.NGHTTP2_NO_ERROR && data?.length) refusal = data.toString('utf8').replace(/[^\x20-\x7e]/g, '?').slice(0, 512);
      });
      this.attach(session, (err) => this.retry(identity, refusal ? new Error(`refused by the edge: ${refusal}`) : (err ?? new Error('closed by edge')), false));
    });
  }

  /** The same Z-Tunnel through the native data plane: it dials, and carries every microtunnel. */
  private async connectNative(identity: TlsIdentity, plane: NativeConnectorPlane): Promise<void> {
    let link;
    try {
      link = await plane.connect(identity, this.hello());
    } catch (err) {
      return this.retry(identity, err as Error, false);
    }
    if (this.stopped) return link.destroy();
    // The process reports a refused certificate as a failed handshake naming OpenSSL's verdict.
    this.attach(link, (err) => this.retry(identity, err ?? new Error('closed by edge'), !!err && /TLS handshake failed.*(certificate|verify)/i.test(err.message)));
  }

  private hello(): ReturnType<typeof makeHello> {
    return makeHello('connector', CAPABILITIES, `zcc-connector ${this.cfg.name}`);
  }

  /** What either data plane's Z-Tunnel needs once up: probes answered, health sent, a retry when it drops. */
  private attach(link: EdgeLink, onClose: (err: Error | null) => void): void {
    this.session = link;
    link.on('message', (m) => {
      if (m.type === 'probe') void this.probe(m.id, m.proto, m.host, m.port);
    });
    const health = setInterval(() => void this.sendHealth(link), this.cfg.healthIntervalMs);
    health.unref();
    link.once('close', (err) => {
      clearInterval(health);
      onClose(err);
    });
    void link.ready().then(() => {
      this.backoff.reset();
      this.log.info({ dataPlane: this.plane ? 'native' : 'node' }, 'Z-Tunnel to edge up');
      this.firstUp?.resolve();
      this.firstUp = null;
    }, () => undefined);
  }

  /**
   * A pin or name mismatch will not heal by retrying (`fatal`): it fails start() so the operator
   * sees it. Network errors (edge not up yet, unreachable) are retried with backoff.
   */
  private retry(identity: TlsIdentity, err: Error, fatal: boolean): void {
    if (this.stopped) return;
    if (fatal && this.firstUp) {
      this.log.error({ err: err.message, code: (err as NodeJS.ErrnoException).code, fatal: true }, 'Z-Tunnel to edge down');
      this.firstUp.reject(err);
      this.firstUp = null;
      this.stopped = true;
      return;
    }
    const wait = this.backoff.next();
    this.log.warn({ err: err.message, code: (err as NodeJS.ErrnoException).code, retryInMs: wait }, 'Z-Tunnel to edge down');
    this.retryTimer = setTimeout(() => this.connect(identity), wait);
    this.retryTimer.unref();
  }

  private async sendHealth(link: EdgeLink): Promise<void> {
    if (!this.plane) return link.send({ type: 'health', activeMicrotunnels: this.active, bytesIn: this.bytesIn, bytesOut: this.bytesOut });
    const s = await this.plane.stats();
    link.send({ type: 'health', activeMicrotunnels: s.active, bytesIn: s.bytesUp, bytesOut: s.bytesDown });
  }

  private async serve(m: IncomingMicrotunnel): Promise<void> {
    const { open } = m;
    // The microtunnel's fields in every line about it; data, not a child logger per microtunnel.
    const fields = { connectorTag: open.tag, target: `${open.host}:${open.port}/${open.proto}` };
    if (open.proto === 'udp') return this.serveUdp(m, this.log.child(fields));
    let addr;
    try {
      addr = this.resolver.resolveStatic(open.host, open.port) ?? (await this.resolver.resolve(open.host, open.port));
    } catch (err) {
      this.log.info({ ...fields, err: (err as Error).message }, 'cannot resolve app');
      return m.reject('unreachable', 'name does not resolve');
    }
    const upstream = net.connect({ host: addr.host, port: addr.port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), this.cfg.connectTimeoutMs);
    upstream.once('error', (err) => {
      clearTimeout(timer);
      if (upstream.connecting || !upstream.remoteAddress) {
        this.log.info({ ...fields, err: err.message }, 'app unreachable');
        m.reject('unreachable', err.message);
      }
    });
    upstream.once('connect', () => {
      clearTimeout(timer);
      const stream = m.accept();
      this.active++;
      this.upstreams.add(upstream);
      splice(upstream, stream, this.log, {
        fields,
        onDone: (r) => {
          this.active--;
          this.upstreams.delete(upstream);
          this.bytesIn += r.bytesUp;
          this.bytesOut += r.bytesDown;
        },
      });
    });
  }

  /**
   * A datagram microtunnel (protocol.md §5.5): one UDP socket connected to the server, so only
   * its replies come back, and datagrams framed both ways. The agent ends the flow when it
   * idles; the socket closes with the microtunnel.
   */
  private async serveUdp(m: IncomingMicrotunnel, log: Logger): Promise<void> {
    let addr;
    try {
      addr = await this.resolver.resolve(m.open.host, m.open.port);
    } catch (err) {
      log.info({ err: (err as Error).message }, 'cannot resolve app');
      return m.reject('unreachable', 'name does not resolve');
    }
    const socket = dgram.createSocket(net.isIPv6(addr.host) ? 'udp6' : 'udp4');
    let channel: DatagramChannel | null = null;
    // Before the accept a socket error is a refusal; after it, an ICMP error from the server
    // (port unreachable) is only logged: UDP has no connection to reset.
    socket.on('error', (err) => {
      if (!channel) m.reject('unreachable', err.message);
      else log.debug({ err: err.message }, 'UDP socket error');
    });
    socket.connect(addr.port, addr.host, () => {
      const ch = new DatagramChannel(m.accept());
      channel = ch;
      this.active++;
      socket.on('message', (d) => {
        this.bytesIn += d.length;
        ch.send(d);
      });
      let open = true;
      ch.on('datagram', (d) => {
        this.bytesOut += d.length;
        if (open) socket.send(d);
      });
      ch.once('end', (err) => {
        open = false;
        this.active--;
        socket.close();
        if (err) ch.destroy();
        else ch.end();
        log.debug({ sent: ch.sent, received: ch.received, dropped: ch.dropped, err: err?.message }, 'UDP flow closed');
      });
    });
  }

  private async probe(id: number, proto: 'tcp' | 'udp', host: string, port: number): Promise<void> {
    const started = performance.now();
    try {
      const addr = await this.resolver.resolve(host, port);
      if (proto === 'tcp') await tcpHandshake(addr.host, addr.port, this.cfg.connectTimeoutMs);
      this.plane?.resolved(host, port, addr);
      this.session?.send({ type: 'probe-result', id, ok: true, rttMs: performance.now() - started });
    } catch (err) {
      this.session?.send({ type: 'probe-result', id, ok: false, reason: (err as Error).message.slice(0, 200) });
    }
  }
}

function isCertificateError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return code.startsWith('ERR_TLS_CERT') || /^(UNABLE_TO_|SELF_SIGNED|CERT_|DEPTH_ZERO)/.test(code);
}

/** Health check of seed 003: a TCP port is healthy when the handshake completes. */
function tcpHandshake(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => s.destroy(new Error(`connect to ${host}:${port} timed out`)), timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
