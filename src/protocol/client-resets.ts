import type { ClientHttp2Stream, Http2Stream } from 'node:http2';
import type { Logger } from '../common/log.js';
import type { ControlMessageOf } from './control-messages.js';
import type { ResetReason } from './microtunnel-open.js';
import { resetThroughPeer, sendReset, type PeerResetter } from './microtunnel-reset.js';

/** How long a client waits for the server to reset a microtunnel it asked it to reset. */
export const RESET_THROUGH_PEER_MS = 5_000;

/** What the client side of a session lends to its resets. */
export interface ClientResetsContext {
  log: Logger;
  /** Sends the request on the control channel; false when it cannot (no channel, closing). */
  send(message: ControlMessageOf<'reset'>): boolean;
  /** Node destroys every stream of a session it tears down: those go at once, not by request. */
  sessionDestroyed(): boolean;
  waitMs?: number | undefined;
}

/**
 * The HTTP/2 client of a Z-Tunnel has the server reset its microtunnels (a `reset` message on
 * the control channel) instead of sending RST_STREAM, which a server's nghttp2 counts: past
 * 1,000 in a burst (33 a second after) it tears down the whole session, every microtunnel on
 * it (docs/protocol.md §5.3). Until the server's RST_STREAM arrives the stream is paused; what
 * the peer still sends waits in its window. If the server has not reset it in time, or cannot be
 * asked, the client sends the RST_STREAM itself.
 */
export class ClientResets implements PeerResetter {
  constructor(private readonly ctx: ClientResetsContext) {}

  /**
   * Routes every teardown of a new microtunnel on our side (a splice, a timeout, a refused open:
   * all end in destroy(), which would put an RST_STREAM on the wire) and resetMicrotunnel()
   * through the server. What it attaches to the stream is shared by every stream (no closure per
   * microtunnel): the stream's tag and this object, and one `destroy` function.
   */
  route(stream: ClientHttp2Stream, tag: number): void {
    const routed = stream as RoutedStream;
    routed[kTag] = tag;
    routed[kResets] = this;
    resetThroughPeer(stream, this);
    routed.destroy = routedDestroy;
  }

  /** True when the server was asked (now or before); false when the caller must reset. */
  ask(stream: Http2Stream, reason: ResetReason): boolean {
    const routed = stream as RoutedStream;
    if (stream.closed || stream.destroyed || this.ctx.sessionDestroyed()) return false;
    if (routed[kAsked]) return true;
    if (!this.ctx.send({ type: 'reset', tag: routed[kTag], reason })) return false;
    routed[kAsked] = true;
    stream.pause();
    const fallback = setTimeout(() => {
      this.ctx.log.debug({ tag: routed[kTag], reason }, 'microtunnel reset: the peer did not reset it; resetting it ourselves');
      sendReset(stream, reason);
      nodeDestroy(routed);
    }, this.ctx.waitMs ?? RESET_THROUGH_PEER_MS);
    fallback.unref();
    stream.once('close', () => clearTimeout(fallback));
    return true;
  }
}

const kTag = Symbol('zcc.tag');
const kResets = Symbol('zcc.clientResets');
const kAsked = Symbol('zcc.resetAsked');
type RoutedStream = ClientHttp2Stream & { [kTag]: number; [kResets]: ClientResets; [kAsked]?: boolean };

/** A routed stream's destroy(): asks the server; Node's own destroy when it cannot be asked. */
function routedDestroy(this: RoutedStream, err?: Error): RoutedStream {
  return this[kResets].ask(this, 'peer-reset') ? this : nodeDestroy(this, err);
}

/** The stream's own destroy(), which routedDestroy shadows. */
function nodeDestroy(stream: RoutedStream, err?: Error): RoutedStream {
  (Object.getPrototypeOf(stream) as ClientHttp2Stream).destroy.call(stream, err);
  return stream;
}
