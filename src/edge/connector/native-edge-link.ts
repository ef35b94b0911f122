import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import { ControlChannel } from '../../protocol/control-channel.js';
import type { ControlMessage, HelloMessage } from '../../protocol/control-messages.js';
import { ProtocolError } from '../../protocol/errors.js';
import { RESET_REASONS } from '../../protocol/microtunnel-open.js';
import { HELLO_TIMEOUT_MS } from '../../protocol/session.js';
import type { DataplaneProcess, DataplaneTunnel } from '../../../native/dataplane/dataplane-process.js';

export interface EdgeLinkEvents {
  message: [ControlMessage];
  close: [Error | null];
}

/**
 * What the connector needs of its Z-Tunnel to the edge, whichever data plane carries it: the
 * control messages (probes, health) and the tunnel's life. ZTunnelSession has it; so has
 * NativeEdgeLink.
 */
export interface EdgeLink {
  readonly closed: boolean;
  send(message: ControlMessage): void;
  ready(): Promise<HelloMessage>;
  on(event: 'message', listener: (m: ControlMessage) => void): this;
  once(event: 'close', listener: (err: Error | null) => void): this;
  destroy(err?: Error): void;
}

/**
 * The connector's Z-Tunnel carried by the native data plane (connector role): the process owns
 * TLS, HTTP/2 and every microtunnel; this side holds the control channel, whose bytes travel
 * through the process's pipe, and answers its name lookups. One link per connect: a new one
 * after each drop, as for a ZTunnelSession.
 */
export class NativeEdgeLink extends EventEmitter<EdgeLinkEvents> implements EdgeLink {
  private readonly control: ControlChannel;
  private readonly pipe: Duplex;
  private closedWith: Error | null | undefined;
  private readonly readyPromise: Promise<HelloMessage>;
  private readonly helloTimer: NodeJS.Timeout;
  private readonly onControl = (id: number, bytes: Buffer): void => {
    if (id === this.id) this.pipe.push(bytes);
  };
  private readonly onDown = (id: number, reason: string): void => {
    if (id === this.id) this.finish(new Error(reason));
  };

  constructor(
    private readonly plane: DataplaneProcess,
    private readonly id: number,
    tunnel: DataplaneTunnel,
    hello: HelloMessage,
    log: Logger,
    where: string,
  ) {
    super();
    this.pipe = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _encoding, done) => {
        plane.send(id, chunk);
        done();
      },
    });
    plane.on('control', this.onControl);
    plane.on('down', this.onDown);
    plane.tunnel(id, tunnel);
    // The channel writes its hello first: the process holds it until the edge opens the control stream.
    this.control = new ControlChannel(this.pipe, hello, log, `${where} control`);
    this.readyPromise = new Promise<HelloMessage>((resolve, reject) => {
      this.control.once('hello', resolve);
      this.once('close', (err) => reject(err ?? new ProtocolError('closed', 'Z-Tunnel closed before hello', where)));
    });
    this.readyPromise.catch(() => undefined);
    this.control.on('message', (m) => {
      // The edge asks us to reset a microtunnel of its (protocol.md §5.3): the process holds it.
      if (m.type === 'reset') plane.reset(id, m.tag, RESET_REASONS[m.reason].code);
      else this.emit('message', m);
    });
    this.control.on('fatal', (err) => this.destroy(err));
    this.helloTimer = setTimeout(() => {
      if (!this.control.hello) this.destroy(new ProtocolError('timeout', 'no hello from peer', where));
    }, HELLO_TIMEOUT_MS);
    this.helloTimer.unref();
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  ready(): Promise<HelloMessage> {
    return this.readyPromise;
  }

  send(message: ControlMessage): void {
    if (!this.closed) this.control.send(message);
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.plane.close(this.id);
    this.finish(err ?? null);
  }

  private finish(err: Error | null): void {
    if (this.closed) return;
    this.closedWith = err;
    clearTimeout(this.helloTimer);
    this.plane.off('control', this.onControl);
    this.plane.off('down', this.onDown);
    this.pipe.push(null);
    this.pipe.destroy();
    this.emit('close', err);
  }
}
