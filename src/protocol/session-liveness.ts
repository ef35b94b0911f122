import type { Http2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../common/log.js';
import { ProtocolError } from './errors.js';

/** What the liveness checks need of a Z-Tunnel session. */
export interface LivenessTarget {
  readonly h2: Http2Session;
  readonly socket: TLSSocket;
  readonly closed: boolean;
  destroy(err: Error): void;
}

export interface LivenessOptions {
  log: Logger;
  where: string;
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
}

/** HTTP/2 PING every keepaliveMs; no answer within keepaliveTimeoutMs tears the session down. Returns the timer. */
export function startKeepalive(session: LivenessTarget, opts: LivenessOptions): NodeJS.Timeout {
  const every = opts.keepaliveMs ?? 15_000;
  const timeout = opts.keepaliveTimeoutMs ?? 10_000;
  return setInterval(() => {
    const { h2 } = session;
    if (h2.destroyed || h2.closed) return;
    const deadline = setTimeout(() => session.destroy(new ProtocolError('timeout', `keepalive unanswered for ${timeout} ms`, opts.where)), timeout);
    deadline.unref();
    h2.ping((err) => {
      clearTimeout(deadline);
      if (err && !session.closed) opts.log.debug({ err: err.message }, 'keepalive ping failed');
    });
  }, every);
}

/**
 * Node cancels pings once an HTTP/2 session is closing (our close() or the peer's GOAWAY), so
 * keepalive can no longer tell a slow drain from a dead peer, or from a session nghttp2 has
 * already terminated (a connection error from the peer makes it send GOAWAY and stop reading
 * and writing without telling JS): such a session never closed. Judge by progress instead: a
 * closing session whose socket moves no byte for keepaliveMs + keepaliveTimeoutMs is torn down.
 * Returns the timer.
 */
export function watchDrain(session: LivenessTarget, opts: LivenessOptions): NodeJS.Timeout {
  const every = opts.keepaliveMs ?? 15_000;
  const limit = every + (opts.keepaliveTimeoutMs ?? 10_000);
  const moved = (): number => session.socket.bytesRead + session.socket.bytesWritten;
  let last = moved();
  let since = Date.now();
  return setInterval(
    () => {
      if (session.closed) return;
      const now = moved();
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since >= limit) {
        session.destroy(new ProtocolError('timeout', `closing Z-Tunnel made no progress for ${limit} ms`, opts.where));
      }
    },
    Math.max(1, Math.min(every, limit / 2)),
  );
}
