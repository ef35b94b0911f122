import { EventEmitter } from 'node:events';
import http2, { type ClientHttp2Stream } from 'node:http2';
import tls from 'node:tls';
import type { Logger } from '../../common/log.js';
import { Backoff } from '../../protocol/backoff.js';
import { makeHello } from '../../protocol/control-channel.js';
import type { ControlMessageOf, HelloMessage } from '../../protocol/control-messages.js';
import { MicrotunnelError, type MicrotunnelTarget, type ResetReason } from '../../protocol/microtunnel-open.js';
import type { AppSegment } from '../../protocol/segments.js';
import { ZTunnelSession } from '../../protocol/session.js';
import { parseHostPort, tunnelClientOptions, type TlsIdentity } from '../../protocol/tls.js';
import { CAPABILITIES } from '../../protocol/version.js';
import { resolveFingerprint, type FingerprintSource } from '../identity/fingerprint.js';
import { needsReauth, watchAuthExpiry } from '../identity/login-expiry.js';
import { DialError, type DialFailure } from '../intercept/dialer.js';
import { WakeDetector } from './wake-detector.js';

export type TunnelState = 'disconnected' | 'connecting' | 'connected' | 'error';

export interface TunnelStatus {
  state: TunnelState;
  edge: string;
  error?: string;
  connectedSince?: Date;
  session?: ControlMessageOf<'session-info'>;
  /** Auth expired: new microtunnels are refused until the user logs in again (from session.authExpiresAt and the clock). */
  needsReauth?: boolean;
}

export interface TunnelClientOptions {
  tenant: string;
  edge: string;
  serverName: string;
  caPem: string;
  identity: TlsIdentity;
  log: Logger;
  keepaliveMs?: number;
  backoff?: Backoff;
  wake?: WakeDetector;
  /**
   * The device fingerprint presented in hello, which the edge compares with the certificate's.
   * Defaults to this machine's, computed at each connect: never one carried over from elsewhere.
   */
  fingerprint?: FingerprintSource;
  /**
   * Disaster recovery: where to connect instead of `edge` (the private service edges the DR
   * domain resolves to). Asked at every connect and taken round robin; undefined means `edge`,
   * an empty list means DR is on but no edge is known yet (retried with backoff).
   */
  edgeOverride?: EdgeOverride;
}

/** One edge to dial; `serverName` (default: the tenant's) is what its certificate must name. */
export interface EdgeTarget {
  edge: string;
  serverName?: string;
}
export type EdgeOverride = () => readonly EdgeTarget[] | undefined;

const REASON_TO_DIAL: Record<ResetReason, DialFailure> = {
  'not-an-app': 'not-an-app',
  'port-not-in-segment': 'not-an-app',
  denied: 'denied',
  'needs-reauth': 'needs-reauth',
  'no-connector': 'no-connector',
  unreachable: 'unreachable',
  'connector-gone': 'reset',
  'upstream-reset': 'reset',
  'peer-reset': 'reset',
  'idle-timeout': 'reset',
  'bad-open': 'denied',
  'duplicate-tag': 'reset',
  'edge-shutdown': 'tunnel-down',
  overloaded: 'tunnel-down',
};

/**
 * The agent's Z-Tunnel to one tenant's edge: keeps it up (capped backoff with jitter, at once
 * after a wake or a network change), learns the app segments, and opens microtunnels.
 */
export class TunnelClient extends EventEmitter<{ status: [TunnelStatus]; segments: [AppSegment[]] }> {
  private session: ZTunnelSession | null = null;
  private state: TunnelStatus;
  private segmentList: AppSegment[] = [];
  private readonly closedBytes = { in: 0, out: 0 };
  private stopped = true;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private readonly wake: WakeDetector;
  /** The edge being dialled or connected now: `opts.edge` unless an override says otherwise. */
  private edgeNow: string;
  /** The name `edgeNow`'s certificate must carry. */
  private serverNameNow: string;
  private overrideTurn = 0;

  constructor(private readonly opts: TunnelClientOptions) {
    super();
    this.edgeNow = opts.edge;
    this.serverNameNow = opts.serverName;
    this.state = { state: 'disconnected', edge: opts.edge };
    this.backoff = opts.backoff ?? new Backoff();
    this.wake = opts.wake ?? new WakeDetector();
    watchAuthExpiry(this, opts.log);
    this.wake.on('wake', (ms) => this.nudge(`machine woke (clock jumped ${Math.round(ms / 1000)} s)`));
    this.wake.on('network-change', () => this.nudge('network changed'));
  }

  get status(): TunnelStatus {
    return { ...this.state, needsReauth: needsReauth(this.state.session?.authExpiresAt, Date.now(), this.state.error) };
  }

  /** Bytes on the wire of this tenant's Z-Tunnels (TLS included), across reconnections. */
  get bytes(): { in: number; out: number } {
    const live = this.session?.socket;
    return { in: this.closedBytes.in + (live?.bytesRead ?? 0), out: this.closedBytes.out + (live?.bytesWritten ?? 0) };
  }

  get segments(): AppSegment[] {
    return this.segmentList;
  }

  /** Microtunnels open on the current Z-Tunnel (0 once every one of them has closed). */
  get openMicrotunnels(): number {
    return this.session?.openMicrotunnels ?? 0;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.wake.start();
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.wake.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.session?.destroy();
    this.session = null;
    this.setState({ state: 'disconnected', edge: this.opts.edge });
  }

  /** Resolves once connected, or rejects after `timeoutMs`. */
  waitConnected(timeoutMs = 15_000): Promise<void> {
    if (this.state.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('status', onStatus);
        reject(new Error(`tenant ${this.opts.tenant}: not connected after ${timeoutMs} ms (${this.state.error ?? this.state.state})`));
      }, timeoutMs);
      const onStatus = (s: TunnelStatus): void => {
        if (s.state !== 'connected') return;
        clearTimeout(timer);
        this.off('status', onStatus);
        resolve();
      };
      this.on('status', onStatus);
    });
  }

  /**
   * Swaps in a renewed key and certificate for the next connect. The Z-Tunnel up now was
   * authenticated at its handshake and is left alone: renewal must not cost a reconnect.
   */
  setIdentity(identity: TlsIdentity): void {
    this.opts.identity = identity;
  }

  /** The edge dialled or connected now, and the name its certificate must carry (a private service edge during DR). */
  get endpoint(): { edge: string; serverName: string } {
    return { edge: this.edgeNow, serverName: this.serverNameNow };
  }

  /** Replaces the edge override (see `TunnelClientOptions.edgeOverride`) for the next connect. */
  setEdgeOverride(override: EdgeOverride | undefined): void {
    this.opts.edgeOverride = override;
  }

  /** Drops the Z-Tunnel and connects at once: the DR mode, and with it the edge, changed. */
  reconnect(why: string): void {
    this.nudge(why);
  }

  /** Takes the new auth expiry of a re-authentication (login API); the edge's next session-info says the same. */
  applyReauth(authExpiresAt: string): void {
    if (this.state.session) this.setState({ ...this.state, session: { ...this.state.session, authExpiresAt } });
  }

  /** Opens a microtunnel; the stream may be written at once, data flows when established. */
  open(target: MicrotunnelTarget): { stream: ClientHttp2Stream; established: Promise<void>; tag: number } {
    const session = this.session;
    if (!session || session.closed || this.state.state !== 'connected') {
      throw new DialError('tunnel-down', `Z-Tunnel of tenant ${this.opts.tenant} is ${this.state.state}${this.state.error ? `: ${this.state.error}` : ''}`);
    }
    const m = session.openMicrotunnel(target);
    const established = m.established.catch((err: unknown) => {
      if (err instanceof MicrotunnelError) throw new DialError(REASON_TO_DIAL[err.reason], err.message, { cause: err });
      throw err;
    });
    established.catch(() => undefined);
    return { ...m, established };
  }

  /** Opens a microtunnel and waits until the far end is connected. */
  async dial(target: MicrotunnelTarget): Promise<ClientHttp2Stream> {
    const m = this.open(target);
    await m.established;
    return m.stream;
  }

  /** Asks the edge whether an app name is reachable through some connector. */
  async reach(host: string, proto?: 'tcp' | 'udp', port?: number): Promise<{ ok: boolean; reason?: string }> {
    if (!this.session || this.state.state !== 'connected') return { ok: false, reason: 'tunnel-down' };
    const r = await this.session.request('reach', { host, proto, port });
    return { ok: r.ok, reason: r.reason };
  }

  private nudge(why: string): void {
    if (this.stopped) return;
    this.opts.log.info({ why }, 'checking Z-Tunnel');
    if (this.state.state === 'connected' && this.session) {
      this.session.destroy(new Error(why));
      return;
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.backoff.reset();
    this.connect();
  }

  /**
   * The hello of this device on a Z-Tunnel of the tenant, with the fingerprint computed now
   * (throws when it cannot be). `capabilities` defaults to everything this agent supports.
   */
  hello(capabilities: readonly string[] = CAPABILITIES): HelloMessage {
    return { ...makeHello('agent', capabilities, 'zcc-agent'), fingerprint: resolveFingerprint(this.opts.fingerprint) };
  }

  private connect(): void {
    if (this.stopped) return;
    this.retryTimer = null;
    const override = this.opts.edgeOverride?.();
    const target = override ? override[this.overrideTurn++ % Math.max(1, override.length)] : { edge: this.opts.edge };
    if (!target) {
      this.retry('disaster recovery is on but no private service edge address is known');
      return;
    }
    this.edgeNow = target.edge;
    const serverName = target.serverName ?? this.opts.serverName;
    this.serverNameNow = serverName;
    this.setState({ state: 'connecting', edge: this.edgeNow, error: this.state.error });
    const { host, port } = parseHostPort(this.edgeNow, 'edge address');
    let hello: HelloMessage;
    try {
      hello = this.hello();
    } catch (err) {
      this.retry(`cannot compute the device fingerprint: ${(err as Error).message}`);
      return;
    }
    const socket = tls.connect({ host, port, ...tunnelClientOptions(this.opts.identity, this.opts.caPem, serverName) });
    socket.setNoDelay(true);
    const failed = (err: Error): void => this.retry(tlsFailure(err));
    socket.once('error', failed);
    socket.once('secureConnect', () => {
      socket.off('error', failed);
      socket.on('error', (err) => this.opts.log.debug({ err: err.message }, 'Z-Tunnel socket error'));
      const session = ZTunnelSession.client(socket, {
        log: this.opts.log,
        hello,
        where: `edge ${this.edgeNow}`,
        keepaliveMs: this.opts.keepaliveMs,
      });
      this.session = session;
      // Connected means usable: the edge has said who we are and which apps exist.
      const markConnected = (): void => {
        if (this.session !== session || this.state.state === 'connected') return;
        this.backoff.reset();
        this.setState({ state: 'connected', edge: this.edgeNow, connectedSince: new Date(), session: this.state.session });
        this.opts.log.info({ edge: this.edgeNow, segments: this.segmentList.length }, 'Z-Tunnel up');
      };
      session.on('message', (m) => {
        if (m.type === 'segments') {
          this.setSegments(m.segments);
          markConnected();
        }
        if (m.type === 'segments-update') this.setSegments([...this.segmentList.filter((s) => !m.remove.includes(s.id) && !m.upsert.some((u) => u.id === s.id)), ...m.upsert]);
        if (m.type === 'session-info') this.setState({ ...this.state, session: m });
      });
      // An edge that refuses our certificate after the handshake (revoked, wrong CA) says why
      // in its GOAWAY; that beats whatever the teardown itself reports.
      let refusal: string | undefined;
      session.h2.once('goaway', (code, _last, data) => {
        if (code !== http2.constants.NGHTTP2_NO_ERROR && data?.length) refusal = data.toString('utf8').replace(/[^\x20-\x7e]/g, '?').slice(0, 512);
      });
      session.once('close', (err) => {
        this.closedBytes.in += socket.bytesRead;
        this.closedBytes.out += socket.bytesWritten;
        if (this.session === session) this.session = null;
        this.retry(refusal ? `refused by the edge: ${refusal}` : (err?.message ?? 'Z-Tunnel closed by the edge'));
      });
    });
  }

  private retry(error: string): void {
    if (this.stopped || this.retryTimer) return;
    const wait = this.backoff.next();
    this.opts.log.warn({ err: error, retryInMs: wait }, 'Z-Tunnel down');
    this.setState({ state: 'error', edge: this.edgeNow, error });
    this.retryTimer = setTimeout(() => this.connect(), wait);
    this.retryTimer.unref();
  }

  private setSegments(list: AppSegment[]): void {
    this.segmentList = list;
    this.emit('segments', list);
  }

  private setState(s: TunnelStatus): void {
    this.state = s;
    this.emit('status', this.status);
  }
}

/** A failed dial in words: OpenSSL's reason rather than its whole error stack, plus the code. */
function tlsFailure(err: Error): string {
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const text = e.reason ?? e.message;
  return e.code && !text.includes(e.code) ? `${text} (${e.code})` : text;
}
