import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type Http2Session,
  type Http2Stream,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../common/log.js';
import { ControlChannel } from './control-channel.js';
import type { ControlMessage, ControlMessageOf, HelloMessage, RequestType, ResponseOf } from './control-messages.js';
import { ProtocolError } from './errors.js';
import { CLIENT_SESSION_OPTIONS, SERVER_SESSION_OPTIONS, SESSION_WINDOW } from './h2-settings.js';
import {
  isResetReason,
  MicrotunnelError,
  openHeaders,
  parseOpen,
  REASON_HEADER,
  type MicrotunnelOpen,
  type MicrotunnelTarget,
  type ResetReason,
} from './microtunnel-open.js';
import { ClientResets } from './client-resets.js';
import { refuse, resetMicrotunnel, resetReasonOf } from './microtunnel-reset.js';
import { startKeepalive, watchDrain } from './session-liveness.js';
import { CONTROL_PATH, RESET_REQUEST_CAPABILITY } from './version.js';

export interface SessionOptions {
  log: Logger;
  hello: HelloMessage;
  /** Label used in logs and errors, e.g. the peer's identity. */
  where: string;
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  helloTimeoutMs?: number;
  /** How long a client waits for the server to reset a microtunnel it asked it to reset. */
  resetThroughPeerMs?: number;
}

/** A microtunnel offered by the peer: accept it to get the stream, or refuse it with a reason. */
export interface IncomingMicrotunnel {
  readonly open: MicrotunnelOpen;
  /**
   * The stream, readable before the answer: what the opener wrote ahead of it (early data)
   * arrives here in order. Write only after accept().
   */
  readonly stream: ServerHttp2Stream;
  accept(): Http2Stream;
  reject(reason: ResetReason, detail?: string): void;
}

/** A microtunnel this side opened; `established` settles when the far end accepts or refuses. */
export interface OutgoingMicrotunnel {
  readonly tag: number;
  readonly stream: ClientHttp2Stream;
  readonly established: Promise<void>;
}

/** A peer whose hello has not come within this long is torn down (protocol.md §5.4). */
export const HELLO_TIMEOUT_MS = 10_000;

export interface SessionEvents {
  ready: [HelloMessage];
  message: [ControlMessage];
  microtunnel: [IncomingMicrotunnel];
  close: [Error | null];
}

/**
 * One Z-Tunnel: HTTP/2 framing over a mutually authenticated TLS 1.3 socket, a control stream of
 * typed messages, and microtunnels as CONNECT streams carrying a 32-bit tag. The HTTP/2 client
 * side opens microtunnels and the control stream; the server side accepts them. Agents are
 * HTTP/2 clients; towards a connector the edge is the HTTP/2 client over the socket the connector
 * dialled, because connectors never listen.
 */
export class ZTunnelSession extends EventEmitter<SessionEvents> {
  private control: ControlChannel | null = null;
  private controlStream: Http2Stream | null = null;
  /** Set by close() or the peer's GOAWAY: no new microtunnels, finish once the open ones are done. */
  private closing = false;
  private readonly localTags = new Set<number>();
  /** The peer's open microtunnels by tag (server role): a reset request names one. */
  private readonly peerStreams = new Map<number, ServerHttp2Stream>();
  /** Client role: our microtunnels are reset by the server, at our request. */
  private readonly clientResets: ClientResets;
  private closedWith: Error | null | undefined = undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly readyPromise: Promise<HelloMessage>;
  /** The 'error' listener of every microtunnel stream of this session (`this` is the stream). */
  private readonly onStreamError: (this: Http2Stream, err: Error) => void;

  private constructor(
    readonly h2: Http2Session,
    readonly socket: TLSSocket,
    private readonly opts: SessionOptions,
  ) {
    super();
    const log = opts.log;
    this.clientResets = new ClientResets({
      log,
      waitMs: opts.resetThroughPeerMs,
      sessionDestroyed: () => h2.destroyed,
      send: (message) => {
        const control = this.control;
        const stream = this.controlStream;
        // A peer that predates the message would answer `error` and leave the stream to us.
        if (this.closed || !control?.hello?.capabilities.includes(RESET_REQUEST_CAPABILITY) || !stream || stream.closed || stream.destroyed || stream.writableEnded) return false;
        control.send(message);
        return true;
      },
    });
    this.onStreamError = function (err) {
      log.debug({ err: err.message, stream: this.id }, 'microtunnel stream error');
    };
    this.readyPromise = new Promise<HelloMessage>((resolve, reject) => {
      this.once('ready', resolve);
      this.once('close', (err) => reject(err ?? new ProtocolError('closed', 'session closed before hello', opts.where)));
    });
    this.readyPromise.catch(() => undefined);
    h2.on('error', (err) => opts.log.debug({ err: err.message }, 'http2 session error'));
    h2.on('goaway', (code) => {
      opts.log.debug({ code }, 'peer sent goaway');
      // Node answers a NO_ERROR GOAWAY with h2.close(), which waits for every stream, the
      // control stream included; without this the session sat half-closed forever: never
      // 'close', refusing new microtunnels, and (h2.closed) no more keepalive pings.
      this.beginClose();
    });
    h2.on('close', () => this.finish(null));
    socket.on('close', () => this.finish(null));
    const helloTimer = setTimeout(() => {
      if (!this.control?.hello) this.destroy(new ProtocolError('timeout', 'no hello from peer', opts.where));
    }, opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
    this.track(helloTimer);
    this.track(startKeepalive(this, this.opts));
  }

  /** Runs the HTTP/2 client role over a connected TLS socket and opens the control stream. */
  static client(socket: TLSSocket, opts: SessionOptions): ZTunnelSession {
    const h2 = http2.connect('http://ztunnel.invalid', { ...CLIENT_SESSION_OPTIONS, createConnection: () => socket });
    const session = new ZTunnelSession(h2, socket, opts);
    h2.once('connect', () => h2.setLocalWindowSize(SESSION_WINDOW));
    const stream = h2.request({ ':method': 'POST', ':path': CONTROL_PATH }, { endStream: false });
    session.attachControl(stream);
    return session;
  }

  /** Runs the HTTP/2 server role over a connected TLS socket; the peer opens the control stream. */
  static server(socket: TLSSocket, opts: SessionOptions): ZTunnelSession {
    const h2 = http2.performServerHandshake(socket, SERVER_SESSION_OPTIONS);
    const session = new ZTunnelSession(h2, socket, opts);
    h2.once('connect', () => h2.setLocalWindowSize(SESSION_WINDOW));
    h2.on('stream', (stream, headers) => session.onStream(stream, headers));
    return session;
  }

  /** Resolves with the peer's hello once the control channel is up. */
  ready(): Promise<HelloMessage> {
    return this.readyPromise;
  }

  get peerHello(): HelloMessage | null {
    return this.control?.hello ?? null;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  get openMicrotunnels(): number {
    return this.localTags.size + this.peerStreams.size;
  }

  send(message: ControlMessage): void {
    this.control?.send(message);
  }

  request<T extends RequestType>(type: T, body: Omit<ControlMessageOf<T>, 'id' | 'type'>, timeoutMs?: number): Promise<ResponseOf<T>> {
    if (!this.control) return Promise.reject(new ProtocolError('closed', 'no control channel', this.opts.where));
    return this.control.request(type, body, timeoutMs);
  }

  /** Opens a microtunnel. Data may be written at once; it flows when the far end accepts. */
  openMicrotunnel(target: MicrotunnelTarget): OutgoingMicrotunnel {
    // A session that is closing (our close() or the peer's GOAWAY) makes h2.request throw a
    // bare ERR_HTTP2_GOAWAY_SESSION / ERR_HTTP2_INVALID_SESSION; report it as documented.
    if (this.closed || this.h2.closed || this.h2.destroyed) throw new MicrotunnelError('connector-gone', 'Z-Tunnel is closed');
    const h2 = this.h2 as ClientHttp2Session;
    if (typeof h2.request !== 'function') throw new Error('only the HTTP/2 client side opens microtunnels');
    const tag = this.allocateTag();
    const stream = h2.request(openHeaders({ ...target, tag }), { endStream: false });
    // A reset with one of our reason codes (or a session torn down under a pending stream) makes
    // Node emit 'error' on the stream; with no listener that is an uncaught exception that took
    // the whole process down (e.g. the edge while waiting for a connector's answer). The failure
    // is reported through `established` and resetReasonOf(), as for accepted streams.
    stream.on('error', this.onStreamError);
    this.localTags.add(tag);
    this.clientResets.route(stream, tag);
    // One listener per event and no error object unless the open fails: what stays attached to
    // an established microtunnel for its lifetime is one 'close' listener.
    let settle: ((err?: MicrotunnelError) => void) | null = null;
    const established = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        settle = null;
        if (err) reject(err);
        else resolve();
      };
    });
    established.catch(() => undefined);
    stream.once('response', (headers) => {
      const status = Number(headers[':status']);
      if (status === 200) return settle?.();
      const reason = headers[REASON_HEADER];
      settle?.(new MicrotunnelError(isResetReason(reason) ? reason : 'peer-reset', `refused with status ${status}`));
      stream.destroy();
    });
    stream.on('close', () => {
      this.localTags.delete(tag);
      this.closeControlIfIdle();
      settle?.(new MicrotunnelError(resetReasonOf(stream), 'closed before established'));
    });
    return { tag, stream, established };
  }

  /** Closes gracefully: in-flight microtunnels finish, no new ones are accepted. */
  close(): void {
    this.stopTimers();
    if (!this.h2.closed && !this.h2.destroyed) this.h2.close();
    this.beginClose();
  }

  destroy(err?: Error): void {
    this.stopTimers();
    if (err && !this.closed) this.opts.log.warn({ err: err.message }, 'Z-Tunnel torn down');
    // Node's HTTP/2 (v20) spins forever in its native RST_STREAM submission, allocating until the
    // process dies, when a session is destroyed from inside one of its own receive callbacks
    // while nghttp2 still holds unsent data for a stream Node already dropped (a stream the peer
    // just reset, or the control stream after the peer's RST_STREAM). Any handler of a stream or
    // session event, or a promise settled by one, is such a place: e.g. destroying right after
    // a microtunnel reset, or a hostile peer's GOAWAY + RST_STREAM on the control stream. The
    // socket goes now (nothing more is read or sent), the HTTP/2 session on the next turn.
    this.socket.destroy();
    setImmediate(() => this.h2.destroy());
    this.finish(err ?? null);
  }

  private attachControl(stream: Http2Stream): void {
    const control = new ControlChannel(stream, this.opts.hello, this.opts.log, `${this.opts.where} control`);
    this.control = control;
    this.controlStream = stream;
    control.on('hello', (hello) => this.emit('ready', hello));
    control.on('message', (m) => (m.type === 'reset' ? this.onResetRequest(m) : this.emit('message', m)));
    control.on('fatal', (err) => this.destroy(err));
    // The control stream lives as long as the session: the peer ending or resetting it out of
    // the blue tears the session down. 'end' counts too: a RST_STREAM with NO_ERROR only ends
    // the readable side while ours is still open, so there was no 'close' and the session lived
    // on without a control channel. While closing, though, that is how the peer says it is done
    // (see closeControlIfIdle), and microtunnels may still be delivering their last bytes here:
    // destroying then cut them short behind a clean 'end'. Let the HTTP/2 close finish instead.
    // (This runs inside nghttp2's receive callback; destroy() defers the teardown for that.)
    let goneLogged = false;
    const gone = (): void => {
      if (!goneLogged) {
        goneLogged = true;
        this.opts.log.debug({ closing: this.closing, closed: this.closed }, 'control stream ended');
      }
      if (this.closed) return;
      if (this.closing) this.closeControlIfIdle();
      else this.destroy(new ProtocolError('closed', 'control stream closed', this.opts.where));
    };
    stream.once('end', gone);
    stream.once('close', gone);
  }

  private beginClose(): void {
    if (this.closed) return;
    if (!this.closing) {
      this.closing = true;
      this.track(watchDrain(this, this.opts));
    }
    this.closeControlIfIdle();
  }

  /**
   * The control stream lives as long as the session, so a graceful HTTP/2 close (which waits for
   * every stream) never completed: once closing and the last microtunnel is done, close it. On
   * the next turn: this is called from stream events, i.e. inside nghttp2's callbacks, where
   * submitting the RST_STREAM right after a peer's reset makes Node spin (see destroy()).
   */
  private closeControlIfIdle(): void {
    if (!this.closing || this.openMicrotunnels > 0) return;
    setImmediate(() => {
      const stream = this.controlStream;
      if (!stream || stream.destroyed || this.openMicrotunnels > 0) return;
      // Already closed by the peer's RST_STREAM, Node keeps it around until our side ends.
      if (stream.closed) stream.destroy();
      else stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', this.onStreamError);
    if (headers[':method'] === 'POST' && headers[':path'] === CONTROL_PATH) {
      if (this.control) return this.refuse(stream, 'bad-open', 'second control stream');
      stream.respond({ ':status': 200 });
      this.attachControl(stream);
      return;
    }
    let open: MicrotunnelOpen;
    try {
      open = parseOpen(headers, `${this.opts.where} stream ${stream.id}`);
    } catch (err) {
      return this.refuse(stream, 'bad-open', (err as Error).message);
    }
    if (!this.control?.hello) return this.refuse(stream, 'bad-open', 'microtunnel before hello');
    if (this.peerStreams.has(open.tag)) return this.refuse(stream, 'duplicate-tag', `tag ${open.tag} is in use`);
    this.peerStreams.set(open.tag, stream);
    let answered = false;
    let closeEmitted = false;
    stream.on('close', () => {
      if (closeEmitted) return; // accept() may replay it
      closeEmitted = true;
      this.peerStreams.delete(open.tag);
      this.closeControlIfIdle();
    });
    const incoming: IncomingMicrotunnel = {
      open,
      stream,
      accept: () => {
        if (answered) throw new Error('microtunnel already answered');
        answered = true;
        if (stream.destroyed || stream.closed) {
          // The opener reset the stream (or the session died) while we were still deciding,
          // e.g. during the connector's TCP connect. respond() would throw
          // ERR_HTTP2_INVALID_STREAM from inside the caller's event handler and crash the
          // process. Hand back the dead stream instead; if its 'close' already went by, replay
          // it so the caller's splice sees a close without end and tears its side down.
          this.opts.log.info({ tag: open.tag, stream: stream.id }, 'microtunnel closed by the peer before it was accepted');
          if (closeEmitted) setImmediate(() => stream.emit('close'));
          return stream;
        }
        stream.respond({ ':status': 200 });
        return stream;
      },
      reject: (reason, detail) => {
        if (answered) return;
        answered = true;
        this.refuse(stream, reason, detail, open.tag);
      },
    };
    if (this.listenerCount('microtunnel') === 0) return incoming.reject('not-an-app', 'peer accepts no microtunnels');
    this.emit('microtunnel', incoming);
  }

  /** Server role: the client asks for the reset of one of its microtunnels. */
  private onResetRequest(m: ControlMessageOf<'reset'>): void {
    const stream = this.peerStreams.get(m.tag);
    if (!stream) return; // gone already (closed, or never opened)
    // Not from inside nghttp2's receive callback (see closeControlIfIdle).
    setImmediate(() => resetMicrotunnel(stream, m.reason));
  }

  private refuse(stream: ServerHttp2Stream, reason: ResetReason, detail?: string, tag?: number): void {
    this.opts.log.info({ reason, tag, stream: stream.id }, `microtunnel refused${detail ? `: ${detail}` : ''}`);
    refuse(stream, reason);
  }

  private allocateTag(): number {
    for (;;) {
      const tag = randomInt(1, 0xffffffff);
      if (!this.localTags.has(tag)) return tag;
    }
  }

  private track(timer: NodeJS.Timeout): void {
    timer.unref();
    this.timers.push(timer);
  }

  private stopTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private finish(err: Error | null): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err;
    this.stopTimers();
    this.emit('close', err);
  }
}
