import type { AddressInfo, Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../../common/log.js';
import { DialError, DIAL_FAILURES, type DialFailure, type Dialer, type DialTarget } from './dialer.js';
import { splice, type Splice } from '../../protocol/splice.js';

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

/** Connection bookkeeping and the dial/splice steps shared by the SOCKS5 and CONNECT fronts. */
export class ProxyCore {
  readonly counters: ProxyCounters;
  readonly log: Logger;
  private readonly dialer: Dialer;
  private readonly handshakeTimeoutMs: number;
  private readonly dialTimeoutMs: number;
  private readonly sockets = new Set<Socket>();
  private readonly splices = new Set<Splice>();
  private nextId = 1;

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
  }

  /** Registers an accepted client socket and returns its per-connection logger. */
  accept(socket: Socket): Logger {
    const log = this.log.child({ conn: this.nextId++ });
    this.counters.accepted++;
    this.counters.active++;
    this.sockets.add(socket);
    // Without a listener a client RST during the handshake would be an uncaught exception.
    socket.on('error', (err) => log.debug({ err: err.message }, 'client socket error'));
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.counters.active--;
    });
    log.debug({ remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}` }, 'accepted');
    return log;
  }

  fail(reason: FailureReason, log: Logger, fields: Record<string, unknown> = {}): void {
    this.counters.failed[reason]++;
    log.info({ ...fields, reason }, 'connection failed');
  }

  /** Disconnects a client that stays silent; returns the function that disarms the timer. */
  armHandshakeTimer(socket: Socket, log: Logger): () => void {
    const timer = setTimeout(() => {
      this.fail('handshake-timeout', log, { timeoutMs: this.handshakeTimeoutMs });
      socket.destroy();
    }, this.handshakeTimeoutMs);
    const disarm = (): void => clearTimeout(timer);
    socket.once('close', disarm);
    return disarm;
  }

  /**
   * Dials with a deadline and gives up as soon as the client disconnects. A dialer that ignores
   * the abort signal and resolves late gets its stream destroyed, so no tunnel leaks.
   */
  async dial(target: DialTarget, client: Socket): Promise<Duplex> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new DialError('timeout', 'dial deadline exceeded')), this.dialTimeoutMs);
    const onClose = (): void => ac.abort(new ClientGoneError());
    client.once('close', onClose);
    const aborted = new Promise<never>((_, reject) => {
      ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
    });
    aborted.catch(() => undefined); // observed by the race below; this only silences late aborts
    // The async wrapper turns a dialer that throws synchronously into a rejection.
    const attempt = (async () => this.dialer(target, ac.signal))();
    try {
      if (client.destroyed) throw new ClientGoneError();
      const remote = await Promise.race([attempt, aborted]);
      if (client.destroyed) throw new ClientGoneError();
      // A stream that is already gone would never emit the events the splice waits for.
      if (remote.destroyed) throw new DialError('reset', 'tunnel closed before use');
      return remote;
    } catch (err) {
      attempt.then((late) => late.destroy(), () => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
      client.off('close', onClose);
    }
  }

  /** Splices an established tunnel and folds its byte counts into the totals when it ends. */
  tunnel(client: Socket, remote: Duplex, log: Logger, head?: Buffer): Splice {
    this.counters.established++;
    const s = splice(client, remote, log, head ? { head } : {});
    this.splices.add(s);
    void s.done.then((r) => {
      this.splices.delete(s);
      this.counters.bytesUp += r.bytesUp;
      this.counters.bytesDown += r.bytesDown;
    });
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
