import type { Http2Stream, ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { reasonFromCode, REASON_HEADER, RESET_REASONS, type ResetReason } from './microtunnel-open.js';

/** Refuses an open with the reason as header and status; after the response it becomes a reset. */
export function refuse(stream: ServerHttp2Stream, reason: ResetReason): void {
  if (stream.destroyed || stream.closed) return;
  if (!stream.headersSent) {
    stream.respond({ ':status': RESET_REASONS[reason].status, [REASON_HEADER]: reason }, { endStream: true });
  } else {
    resetMicrotunnel(stream, reason);
  }
}

/**
 * How the HTTP/2 client of a session resets one of its microtunnels without sending RST_STREAM:
 * it asks the server to (client-resets.ts). `ask` returns false when it cannot (no control
 * channel, the stream is closed already), and the caller resets the stream itself.
 */
export interface PeerResetter {
  ask(stream: Http2Stream, reason: ResetReason): boolean;
}

/**
 * Held on the stream itself (not in a WeakMap beside it): one property per microtunnel instead of
 * an ephemeron entry, which V8 re-scans at every collection while the stream lives.
 */
const kPeerReset = Symbol('zcc.peerReset');
type WithPeerReset = Http2Stream & { [kPeerReset]?: PeerResetter };

/** Registers how a client stream is reset through its server (session.ts, at the open). */
export function resetThroughPeer(stream: Http2Stream, resetter: PeerResetter): void {
  (stream as WithPeerReset)[kPeerReset] = resetter;
}

/**
 * Resets a microtunnel with a reason the far end can read. A client stream is reset by the
 * session's server at our request (a server's nghttp2 allows a peer 1,000 RST_STREAMs in a
 * burst, then 33 a second, and tears the whole session down past that); a server stream, or a
 * client stream whose server cannot be asked, by our own RST_STREAM (sendReset).
 */
export function resetMicrotunnel(stream: Http2Stream, reason: ResetReason): void {
  if (stream.destroyed || stream.closed) return;
  if ((stream as WithPeerReset)[kPeerReset]?.ask(stream, reason)) return;
  sendReset(stream, reason);
}

/**
 * Puts the RST_STREAM on the wire ourselves. Node's `close(code)` ends the writable side first,
 * and on an idle stream that puts END_STREAM on the wire ahead of the RST_STREAM: the peer would
 * see a clean end of data before the reset. A reset stream has no graceful end to send, so its
 * `_final` (the stream's shutdown hook) is made a no-op first.
 */
export function sendReset(stream: Http2Stream, reason: ResetReason): void {
  if (stream.destroyed || stream.closed) return;
  (stream as unknown as { _final: (cb: () => void) => void })._final = (cb) => cb();
  stream.close(RESET_REASONS[reason].code);
}

/**
 * Whether a stream that just ended was in truth reset. Node's HTTP/2 streams emit a graceful
 * 'end' when their session is torn down under them (a killed connector, a dead edge), and
 * `close(code)` can put END_STREAM on the wire just ahead of the RST_STREAM; a FIN from such a
 * stream must never be forwarded as a FIN, or a cut-off transfer would look complete. Callers
 * ask after the current I/O turn (setImmediate), once an RST read in the same turn is applied.
 */
export function endedByReset(stream: Duplex): boolean {
  const s = stream as Partial<Pick<Http2Stream, 'rstCode' | 'session'>>;
  return !!s.rstCode || !!s.session?.destroyed;
}

/** Why a microtunnel stream closed abnormally, as our reason. */
export function resetReasonOf(stream: Http2Stream): ResetReason {
  return reasonFromCode(stream.rstCode);
}
