import dgram from 'node:dgram';
import type { Logger } from '../../../common/log.js';
import { DatagramChannel } from '../../../protocol/datagram.js';
import type { Agent } from '../../agent.js';
import { openFlowSocket } from '../../../../native/udp-origdst.js';
import type { Inet4Address } from '../../../../native/inet.js';
import { IdleTimer } from './timeouts.js';

/** A refused flow swallows its datagrams this long, so a retrying app is not a microtunnel per datagram. */
export const REFUSED_FLOW_HOLD_MS = 5_000;
/** Replies held while the flow socket connects (a few; it takes microseconds). */
const MAX_QUEUED_REPLIES = 64;

export interface UdpFlowContext {
  agent: Agent;
  log: Logger;
  idleMs: number;
}

/**
 * One UDP flow (client ip:port ↔ synthetic ip:port) carried by one datagram microtunnel. The
 * flow's own socket, bound to the synthetic IP:port and connected to the client, sends the
 * replies (from the address the app sent to) and takes the flow's later datagrams. The first
 * datagrams go into the microtunnel at once, before it is established (early data); the flow
 * ends after `idleMs` without a datagram either way (ZPA's UDP timeout: 60 s).
 */
export class UdpFlow {
  private readonly socket: dgram.Socket;
  private readonly channel: DatagramChannel;
  private readonly idle: IdleTimer;
  private connected = false;
  private established = false;
  private failed = false;
  private closed = false;
  private readonly replies: Buffer[] = [];

  constructor(
    readonly client: Inet4Address,
    readonly target: Inet4Address,
    private readonly ctx: UdpFlowContext,
    private readonly log: Logger,
    private readonly onClosed: () => void,
  ) {
    // Throws DialError (no app, tunnel down) before anything is allocated.
    const opened = ctx.agent.open({ proto: 'udp', host: target.address, port: target.port });
    this.channel = new DatagramChannel(opened.stream);
    this.idle = new IdleTimer((ms) => this.close(`idle ${ms} ms`));
    this.idle.setLimit(ctx.idleMs);
    this.socket = dgram.createSocket('udp4');
    this.socket.on('error', (err) => log.debug({ err: err.message }, 'UDP flow socket error'));
    try {
      this.socket.bind({ fd: openFlowSocket(target) });
    } catch (err) {
      this.channel.destroy();
      throw err;
    }
    this.socket.connect(client.port, client.address, () => {
      this.connected = true;
      for (const r of this.replies.splice(0)) this.socket.send(r);
    });
    this.socket.on('message', (d) => this.fromClient(d));
    this.channel.on('datagram', (d) => this.toClient(d));
    this.channel.once('end', (err) => {
      // A stream that closes before its answer is a refusal, whichever event comes first.
      if (!this.established) return this.refused(err?.message ?? 'closed before established');
      this.close(err ? `microtunnel failed: ${err.message}` : 'microtunnel ended');
    });
    opened.established.then(
      () => {
        this.established = true;
        log.debug({ app: `${opened.host}:${target.port}`, tenant: opened.tenant }, 'UDP microtunnel established');
      },
      (err: unknown) => this.refused((err as Error).message),
    );
  }

  /** A datagram from the client (through the flow socket or, for the first ones, the listener). */
  fromClient(data: Buffer): void {
    if (this.closed || this.failed) return;
    this.idle.touch();
    this.channel.send(data);
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.idle.stop();
    this.channel.end();
    // The far end answers our FIN with its own; if it does not, do not wait for it.
    setTimeout(() => this.channel.destroy(), 5_000).unref();
    this.socket.close();
    this.log.debug({ why, sent: this.channel.sent, received: this.channel.received, dropped: this.channel.dropped }, 'UDP flow closed');
    this.onClosed();
  }

  private toClient(d: Buffer): void {
    if (this.closed) return;
    this.idle.touch();
    if (this.connected) this.socket.send(d);
    else if (this.replies.length < MAX_QUEUED_REPLIES) this.replies.push(d);
  }

  /** Refused or failed: drop this flow's datagrams for a while, then let the app try again. */
  private refused(why: string): void {
    if (this.failed || this.closed) return;
    this.failed = true;
    this.log.info({ err: why }, 'UDP microtunnel refused');
    this.idle.setLimit(0);
    this.channel.destroy();
    setTimeout(() => this.close(`refused: ${why}`), REFUSED_FLOW_HOLD_MS).unref();
  }
}
