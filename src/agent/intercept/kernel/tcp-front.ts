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

  constructor(
    private readonly ctx: Omit<TcpContext, 'track'>,
    private readonly isSynthetic: (ip: string) => boolean,
  ) {
    // allowHalfOpen: a client's FIN must not end our side before the app's reply is through.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s));
    this.server.on('error', (err) => ctx.log.error({ err: err.message }, 'intercept listener error'));
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
    const log = this.ctx.log.child({ conn: this.nextId++ });
    this.ctx.counters.accepted++;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // Without a listener a client RST would be an uncaught exception.
    socket.on('error', (err) => log.debug({ err: err.message }, 'client socket error'));
    let dst: Inet4Address;
    try {
      dst = this.destination(socket);
    } catch (err) {
      this.ctx.counters.refused++;
      log.info({ err: (err as Error).message }, 'no original destination: connection reset');
      socket.resetAndDestroy();
      return;
    }
    const clog = log.child({ dst: `${dst.address}:${dst.port}`, src: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}` });
    serveTcp(socket, dst, { ...this.ctx, track: (s) => this.trackSplice(s) }, clog);
  }

  private destination(socket: Socket): Inet4Address {
    const local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    if (this.isSynthetic(local.address)) return local; // TPROXY: the socket has the original address
    const orig = originalDst(handleFd(socket));
    if (!this.isSynthetic(orig.address)) throw new Error(`original destination ${orig.address} is not a synthetic IP`);
    return orig;
  }

  private trackSplice(s: Splice): void {
    this.splices.add(s);
    void s.done.then(() => this.splices.delete(s));
  }
}
