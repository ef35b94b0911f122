import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import dns from 'node:dns';
import { answerInfo, type Exchanged, type Upstream } from './upstream.js';
import { HEADER_LEN, scanResponse } from './wire.js';

/**
 * UDP exchanges with upstream resolvers over a few long-lived sockets instead of one socket per
 * query (which cost a socket, a bind and a close per forwarded query: about 100 µs).
 *
 * Spoofing resistance (the Kaminsky attack) rests on what an off-path attacker cannot guess:
 * - the query ID: random for every query (crypto.randomFillSync), unique among the queries
 *   outstanding on the socket;
 * - the source port: each socket gets a fresh random ephemeral port from the kernel, and a
 *   socket only carries `queriesPerSocket` queries or lives `socketMaxAgeMs` before a new one
 *   takes over (the old one stays open until its outstanding queries end, then closes);
 * - the answer must come from the upstream's address and port (the socket is connected, so
 *   the kernel drops anything else, and the source is checked again), carry an outstanding ID,
 *   be a response, and repeat the question exactly (up to case, RFC 4343). Anything else is
 *   ignored and the query keeps waiting: a forged datagram cannot cut the real answer off.
 * ICMP errors reported on a connected socket end nothing either (they are as easy to forge);
 * they retire the socket, so new queries leave from another port. A socket with nothing
 * outstanding for `socketMaxAgeMs` is closed, so an agent that forwards nothing holds none.
 */

export interface UdpPoolOptions {
  /** Queries one socket sends before a new socket (a new source port) takes over. */
  queriesPerSocket?: number;
  /** Age after which a socket takes no new queries. */
  socketMaxAgeMs?: number;
  /** Called with socket errors, for debug logs. */
  onError?: (err: Error, upstream: string) => void;
}

export const DEFAULT_QUERIES_PER_SOCKET = 100;
export const DEFAULT_SOCKET_MAX_AGE_MS = 10_000;

let lastLiteral = '';
let lastFamily = 0;

/**
 * dgram's lookup for IP literals, called back at once (dns.lookup defers to the next tick).
 * The DNS server sends each reply to the address its query came from, mostly the same one
 * (127.0.0.1): the last literal seen skips the address regex.
 */
export const literalLookup: NonNullable<dgram.SocketOptions['lookup']> = (address, options, cb) => {
  if (address === lastLiteral) return cb(null, address, lastFamily);
  const family = net.isIP(address);
  if (family === 0) return dns.lookup(address, options, cb);
  lastLiteral = address;
  lastFamily = family;
  cb(null, address, family);
};

/** Random 16-bit query IDs, drawn from the CSPRNG a block at a time. */
class RandomIds {
  private readonly block = new Uint16Array(512);
  private next = this.block.length;

  take(): number {
    if (this.next === this.block.length) {
      randomFillSync(this.block);
      this.next = 0;
    }
    return this.block[this.next++] as number;
  }
}

interface Pending {
  query: Buffer;
  /** End of the question section in `query`. */
  questionEnd: number;
  timer: NodeJS.Timeout;
  resolve: (v: Exchanged) => void;
  reject: (e: Error) => void;
}

class Channel {
  readonly sock: dgram.Socket;
  readonly pending = new Map<number, Pending>();
  readonly createdAt = Date.now();
  sent = 0;
  retired = false;
  private connected = false;
  private closed = false;
  private queue: Buffer[] = [];
  /** Closes the socket once it has had nothing outstanding for a while. */
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly up: Upstream,
    private readonly onError: (err: Error) => void,
    private readonly idleMs: number,
  ) {
    this.sock = dgram.createSocket({ type: net.isIPv6(up.host) ? 'udp6' : 'udp4', lookup: literalLookup });
    // Never keeps the agent alive on its own; close() ends it deliberately.
    this.sock.unref();
    this.sock.on('error', (err) => {
      this.retired = true;
      this.onError(err);
      this.closeIfDone();
    });
    this.sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    // A failed connect is an 'error' like any other: the socket retires and what was queued
    // for it times out.
    this.sock.once('connect', () => {
      this.connected = true;
      const queued = this.queue;
      this.queue = [];
      for (const q of queued) this.transmit(q);
    });
    this.sock.connect(up.port, up.host);
  }

  send(q: Buffer): void {
    this.sent += 1;
    if (this.connected) this.transmit(q);
    else this.queue.push(q);
  }

  private transmit(q: Buffer): void {
    if (this.closed) return;
    // No callback: send errors arrive as 'error', and the query then times out.
    this.sock.send(q);
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.address !== this.up.host || rinfo.port !== this.up.port || msg.length < HEADER_LEN) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p) return;
    const info = answerInfo(p.query, p.questionEnd, msg);
    if (!info) return;
    this.finish(msg.readUInt16BE(0), p);
    p.resolve({ msg, info });
  }

  finish(id: number, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    this.closeIfDone();
    if (this.pending.size > 0 || this.closed) return;
    if (this.idleTimer) {
      this.idleTimer.refresh();
    } else {
      this.idleTimer = setTimeout(() => {
        if (this.pending.size > 0) return;
        this.retired = true;
        this.close();
      }, this.idleMs);
      this.idleTimer.unref();
    }
  }

  closeIfDone(): void {
    if (this.retired && this.pending.size === 0) this.close();
  }

  /** Close the socket; exchanges still outstanding fail at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.retired = true;
    this.queue = [];
    clearTimeout(this.idleTimer);
    this.sock.close();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new Error(`udp exchange with ${this.up.label} abandoned: socket closed`));
    }
  }
}

/** UDP exchanges with upstream resolvers over pooled, rotated, connected sockets. */
export class UdpUpstreams {
  private readonly channels = new Map<string, Channel>();
  private readonly ids = new RandomIds();
  private readonly queriesPerSocket: number;
  private readonly socketMaxAgeMs: number;
  /** Sockets opened so far, for tests and status. */
  socketsOpened = 0;
  /** After close(): exchanges fail at once instead of opening new sockets, until open(). */
  private closed = false;

  constructor(private readonly opts: UdpPoolOptions = {}) {
    this.queriesPerSocket = opts.queriesPerSocket ?? DEFAULT_QUERIES_PER_SOCKET;
    this.socketMaxAgeMs = opts.socketMaxAgeMs ?? DEFAULT_SOCKET_MAX_AGE_MS;
  }

  /**
   * Send `query` (its ID is replaced by a fresh random one) and resolve with the answer, or
   * reject after `timeoutMs`. The answer carries the ID this exchange chose.
   */
  exchange(up: Upstream, query: Buffer, timeoutMs: number): Promise<Exchanged> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error(`udp exchange with ${up.label} refused: closed`));
        return;
      }
      let questionEnd: number;
      try {
        questionEnd = scanResponse(query).questionEnd;
      } catch (err) {
        reject(err as Error);
        return;
      }
      const ch = this.channelFor(up);
      let id = this.ids.take();
      while (ch.pending.has(id)) id = this.ids.take();
      const q = Buffer.from(query);
      q.writeUInt16BE(id, 0);
      const p: Pending = {
        query: q,
        questionEnd,
        resolve,
        reject,
        timer: setTimeout(() => {
          ch.finish(id, p);
          reject(new Error(`no answer from ${up.label} within ${timeoutMs} ms (udp)`));
        }, timeoutMs),
      };
      ch.pending.set(id, p);
      ch.send(q);
    });
  }

  /** Close every socket; outstanding exchanges on them fail, and new ones until open(). */
  close(): void {
    this.closed = true;
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
  }

  /** Accept exchanges again after close(). */
  open(): void {
    this.closed = false;
  }

  /** Stop using the sockets of upstreams not in `keep` (they close once their queries end). */
  retain(keep: readonly Upstream[]): void {
    const labels = new Set(keep.map((u) => u.label));
    for (const [label, ch] of this.channels) {
      if (labels.has(label)) continue;
      ch.retired = true;
      ch.closeIfDone();
      this.channels.delete(label);
    }
  }

  private channelFor(up: Upstream): Channel {
    let ch = this.channels.get(up.label);
    if (ch && !ch.retired && (ch.sent >= this.queriesPerSocket || Date.now() - ch.createdAt >= this.socketMaxAgeMs)) {
      ch.retired = true;
      ch.closeIfDone();
    }
    if (!ch || ch.retired) {
      ch = new Channel(up, (err) => this.opts.onError?.(err, up.label), this.socketMaxAgeMs);
      this.socketsOpened += 1;
      this.channels.set(up.label, ch);
    }
    return ch;
  }
}
