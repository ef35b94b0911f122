import type { AddressInfo, Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../../common/log.js';
import { DialError, DIAL_FAILURES, type DialFailure, type Dialer, type DialTarget, type StartedDial } from './dialer.js';
import { splice, type Splice, type SpliceResult } from '../../protocol/splice.js';

/** Dial failures plus the ways a client can fail before a dial is even attempted. */
export type FailureReason = DialFailure | 'bad-request' | 'handshake-timeout' | 'client-gone' | 'internal';

export interface ProxyCounters {
  /** Client connections accepted since start. */
  accepted: number;
  /** Client connections currently open (handshaking or spliced). */
  active: number;
  /** Connections that reached the splice stage. */
  established: number;
  failed: Record<FailureReason, number>;
  /** Totals of finished splices; "up" is client → tunnel. */
  bytesUp: number;
  bytesDown: number;
}

export interface ProxyOptions {
  dialer: Dialer;
  log?: Logger;
  /** A client that has not completed its handshake by then is disconnected. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Backstop for dialers that never settle; maps to DialError 'timeout'. Default 30 s. */
  dialTimeoutMs?: number;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Thrown by `dial` when the client disconnected while the tunnel was being opened. */
export class ClientGoneError extends Error {
  constructor() {
    super('client disconnected during dial');
    this.name = 'ClientGoneError';
  }
}

/** The reason to report for anything a dialer threw. */
export function failureOf(err: unknown): FailureReason {
  if (err instanceof DialError) return err.reason;
  if (err instanceof ClientGoneError) return 'client-gone';
  return 'internal';
}

/** Fields naming one client connection in log lines: `{ conn: <id> }`, plus host and port once known. */
export type ConnFields = Record<string, unknown>;

const kConn = Symbol('zcc.conn');
type Tracked = Socket & { [kConn]?: number };

/**
 * Connection bookkeeping and the dial/splice steps shared by the SOCKS5 and CONNECT fronts.
 * Nothing per connection outlives the handshake besides the sockets, the splice and one entry
 * in `sockets`: no logger, timer or closure per connection; log lines carry the connection's
 * fields as data, built only when something is logged.
 */
export class ProxyCore {
  readonly counters: ProxyCounters;
  readonly log: Logger;
  private readonly dialer: Dialer;
  private readonly handshakeTimeoutMs: number;
  private readonly dialTimeoutMs: number;
  private readonly sockets = new Set<Socket>();
  private readonly splices = new Set<Splice>();
  private nextId = 1;
  /** Listeners shared by every accepted socket (`this` is the socket). */
  private readonly onSocketError: (this: Tracked, err: Error) => void;
  private readonly onSocketClose: (this: Tracked) => void;
  /** Never called before splice() returns (see SpliceOptions.onDone). */
  private readonly onSpliceDone = (r: SpliceResult, s: Splice): void => {
    this.splices.delete(s);
    this.counters.bytesUp += r.bytesUp;
    this.counters.bytesDown += r.bytesDown;
  };

  constructor(opts: ProxyOptions, proto: string) {
    this.dialer = opts.dialer;
    this.log = (opts.log ?? silentLogger).child({ proto });
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 30_000;
    const failed = {} as Record<FailureReason, number>;
    for (const r of [...DIAL_FAILURES, 'bad-request', 'handshake-timeout', 'client-gone', 'internal'] as const) {
      failed[r] = 0;
    }
    this.counters = { accepted: 0, active: 0, established: 0, failed, bytesUp: 0, bytesDown: 0 };
    const log = this.log;
    const { sockets, counters } = this;
    this.onSocketError = function (err) {
      log.debug({ conn: this[kConn], err: err.message }, 'client socket error');
    };
    this.onSocketClose = function () {
      sockets.delete(this);
      counters.active--;
    };
  }

  /** Per-connection bookkeeping still held: accepted sockets not yet closed, splices not yet settled. Both 0 once every connection is gone (leak checks). */
  get tracked(): { sockets: number; splices: number } {
    return { sockets: this.sockets.size, splices: this.splices.size };
  }

  /** Registers an accepted client socket and returns the fields naming it in log lines. */
  accept(socket: Socket): ConnFields {
    const conn = this.nextId++;
    (socket as Tracked)[kConn] = conn;
    this.counters.accepted++;
    this.counters.active++;
    this.sockets.add(socket);
    // Without a listener a client RST during the handshake would be an uncaught exception.
    socket.on('error', this.onSocketError);
    socket.once('close', this.onSocketClose);
    // remoteAddress is a system call (getpeername): only when the line is written.
    if (this.log.isLevelEnabled('debug')) this.log.debug({ conn, remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}` }, 'accepted');
    return { conn };
  }

  fail(reason: FailureReason, fields: ConnFields, extra: Record<string, unknown> = {}): void {
    this.counters.failed[reason]++;
    this.log.info({ ...fields, ...extra, reason }, 'connection failed');
  }

  /** Disconnects a client that stays silent; returns the function that disarms the timer. */
  armHandshakeTimer(socket: Socket, fields: ConnFields): () => void {
    const timer = setTimeout(() => {
      this.fail('handshake-timeout', fields, { timeoutMs: this.handshakeTimeoutMs });
      socket.destroy();
    }, this.handshakeTimeoutMs);
    // Disarmed when the handshake is over or the socket goes, whichever comes first; nothing of
    // it stays attached to a spliced connection.
    const disarm = (): void => {
      clearTimeout(timer);
      socket.off('close', disarm);
    };
    socket.once('close', disarm);
    return disarm;
  }

  /**
   * Dials with a deadline and gives up as soon as the client disconnects. A dialer that ignores
   * the abort signal and resolves late gets its stream destroyed, so no tunnel leaks.
   */
  dial(target: DialTarget, client: Socket): Promise<Duplex> {
    if (this.dialer.start) return this.dialStarted(this.dialer.start, target, client);
    return new Promise<Duplex>((resolve, reject) => {
      if (client.destroyed) return reject(new ClientGoneError());
      const ac = new AbortController();
      let settled = false;
      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        client.off('close', onClose);
      };
      const giveUp = (err: Error): void => {
        if (settled) return;
        cleanup();
        ac.abort(err);
        reject(err);
      };
      const onClose = (): void => giveUp(new ClientGoneError());
      const timer = setTimeout(() => giveUp(new DialError('timeout', 'dial deadline exceeded')), this.dialTimeoutMs);
      client.once('close', onClose);
      let attempt: Promise<Duplex>;
      try {
        attempt = this.dialer(target, ac.signal);
      } catch (err) {
        attempt = Promise.reject(err as Error);
      }
      attempt.then(
        (remote) => {
          if (settled) return void remote.destroy();
          cleanup();
          if (client.destroyed) {
            remote.destroy();
            return reject(new ClientGoneError());
          }
          // A stream that is already gone would never emit the events the splice waits for.
          if (remote.destroyed) return reject(new DialError('reset', 'tunnel closed before use'));
          resolve(remote);
        },
        (err: unknown) => {
          if (settled) return;
          cleanup();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** dial() through the dialer's `start`: giving up is destroying the stream, no AbortSignal. */
  private dialStarted(start: NonNullable<Dialer['start']>, target: DialTarget, client: Socket): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      if (client.destroyed) return reject(new ClientGoneError());
      let started: StartedDial;
      try {
        started = start(target);
      } catch (err) {
        return reject(err instanceof Error ? err : new Error(String(err)));
      }
      const { stream, established } = started;
      let settled = false;
      const finish = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.off('close', onClose);
        if (!err && client.destroyed) err = new ClientGoneError();
        // A stream that is already gone would never emit the events the splice waits for.
        if (!err && stream.destroyed) err = new DialError('reset', 'tunnel closed before use');
        if (!err) return resolve(stream);
        stream.destroy();
        reject(err);
      };
      const onClose = (): void => finish(new ClientGoneError());
      const timer = setTimeout(() => finish(new DialError('timeout', 'dial deadline exceeded')), this.dialTimeoutMs);
      client.once('close', onClose);
      established.then(
        () => finish(null),
        (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
      );
    });
  }

  /** Splices an established tunnel and folds its byte counts into the totals when it ends. */
  tunnel(client: Socket, remote: Duplex, fields: ConnFields, head?: Buffer): Splice {
    this.counters.established++;
    const s = splice(client, remote, this.log, head ? { fields, head, onDone: this.onSpliceDone } : { fields, onDone: this.onSpliceDone });
    this.splices.add(s);
    return s;
  }

  /**
   * Sends a final reply and closes gracefully. The socket keeps being drained so unread input
   * does not turn our FIN into an RST before the client has read the reply; a client that
   * never closes its side is dropped after `lingerMs`.
   */
  endWithReply(socket: Socket, reply: Buffer | string, lingerMs = 2_000): void {
    if (socket.destroyed) return;
    socket.end(reply);
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  listen(server: Server, addr: ListenAddress): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen({ host: addr.host, port: addr.port }, () => {
        server.off('error', onError);
        const info = server.address() as AddressInfo;
        this.log.info({ host: info.address, port: info.port }, 'listening');
        resolve(info);
      });
    });
  }

  /** Stops accepting, resets every live client (RST, not a misleading FIN) and waits. */
  async close(server: Server): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });
    for (const s of this.splices) s.abort(new Error('proxy shutting down'));
    for (const socket of this.sockets) {
      if (!socket.destroyed) socket.resetAndDestroy();
    }
    await closed;
    this.log.info('closed');
  }
}

/** What the SOCKS5 and HTTP CONNECT front ends share: their core, their server and its life. */
export abstract class ProxyFront {
  protected constructor(
    protected readonly core: ProxyCore,
    protected readonly server: Server,
  ) {}

  get counters(): ProxyCounters {
    return this.core.counters;
  }

  /** See ProxyCore.tracked. */
  get tracked(): { sockets: number; splices: number } {
    return this.core.tracked;
  }

  start(addr: ListenAddress): Promise<AddressInfo> {
    return this.core.listen(this.server, addr);
  }

  close(): Promise<void> {
    return this.core.close(this.server);
  }
}
