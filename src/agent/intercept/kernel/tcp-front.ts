import net, { type AddressInfo, type Socket } from 'node:net';
import type { Splice } from '../../../protocol/splice.js';
import { handleFd, originalDst, setTransparent, type Inet4Address } from '../../../../native/inet.js';
import { serveTcp, type TcpContext } from './tcp-connection.js';

/**
 * The one TCP listener every intercepted connection lands on, on 127.0.0.1. It carries
 * IP_TRANSPARENT so that TPROXY may hand it connections for any synthetic IP:port; the accepted
 * socket's local address is then the original destination. Under the redirect fallback the
 * local address is the listener's own and the original one comes from SO_ORIGINAL_DST.
 */
export class TcpFront {
  private readonly server: net.Server;
  private readonly sockets = new Set<Socket>();
  private readonly splices = new Set<Splice>();
  private nextId = 1;
  /** Shared by every connection: the context and the listeners (`this` is the socket). */
  private readonly serveCtx: TcpContext;
  private readonly onSocketClose: (this: Socket) => void;
  private readonly onSocketError: (this: Socket, err: Error) => void;

  constructor(
    private readonly ctx: Omit<TcpContext, 'track' | 'spliceDone'>,
    private readonly isSynthetic: (ip: string) => boolean,
  ) {
    // allowHalfOpen: a client's FIN must not end our side before the app's reply is through.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s));
    this.server.on('error', (err) => ctx.log.error({ err: err.message }, 'intercept listener error'));
    this.serveCtx = { ...ctx, track: (s) => this.splices.add(s), spliceDone: (_r, s) => this.splices.delete(s) };
    const { sockets } = this;
    this.onSocketClose = function () {
      sockets.delete(this);
    };
    this.onSocketError = function (err) {
      ctx.log.debug({ src: `${this.remoteAddress ?? '?'}:${this.remotePort ?? 0}`, err: err.message }, 'client socket error');
    };
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    setTransparent(handleFd(this.server));
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops accepting and resets every live connection (an RST, never a misleading FIN). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
    for (const s of this.splices) s.abort(new Error('intercept stopping'));
    for (const s of this.sockets) if (!s.destroyed) s.resetAndDestroy();
    await closed;
  }

  private accept(socket: Socket): void {
    const conn = this.nextId++;
    this.ctx.counters.accepted++;
    this.sockets.add(socket);
    socket.once('close', this.onSocketClose);
    // Without a listener a client RST would be an uncaught exception.
    socket.on('error', this.onSocketError);
    let dst: Inet4Address;
    try {
      dst = this.destination(socket);
    } catch (err) {
      this.ctx.counters.refused++;
      this.ctx.log.info({ conn, err: (err as Error).message }, 'no original destination: connection reset');
      socket.resetAndDestroy();
      return;
    }
    // Fields of this connection's log lines, as data: no child logger per connection.
    serveTcp(socket, dst, this.serveCtx, { conn, dst: `${dst.address}:${dst.port}` });
  }

  private destination(socket: Socket): Inet4Address {
    const local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    if (this.isSynthetic(local.address)) return local; // TPROXY: the socket has the original address
    const orig = originalDst(handleFd(socket));
    if (!this.isSynthetic(orig.address)) throw new Error(`original destination ${orig.address} is not a synthetic IP`);
    return orig;
  }
}
