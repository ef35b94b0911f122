import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

/**
 * Datagrams inside a `zcc-proto: udp` microtunnel (protocol.md §5.5): each datagram is a u16
 * big-endian length then that many bytes, so boundaries survive the byte stream. A zero length
 * is a valid, empty datagram (UDP health checks send those).
 */

/** Largest payload a u16 prefix can carry; IPv4 UDP payloads stop at 65 507 anyway. */
export const MAX_DATAGRAM = 0xffff;

/**
 * Bytes a sender lets wait in the microtunnel before it drops datagrams instead: UDP may lose
 * datagrams, and queueing without bound behind a slow tunnel would only add latency and memory.
 */
export const DEFAULT_DATAGRAM_QUEUE = 1 << 20;

export function encodeDatagram(payload: Uint8Array): Buffer {
  if (payload.length > MAX_DATAGRAM) throw new RangeError(`datagram of ${payload.length} bytes exceeds ${MAX_DATAGRAM}`);
  const out = Buffer.allocUnsafe(2 + payload.length);
  out.writeUInt16BE(payload.length, 0);
  out.set(payload, 2);
  return out;
}

/**
 * Cuts a byte stream back into datagrams. Chunks are only listed until a whole datagram is
 * there and then joined once, so a large datagram arriving in many small chunks costs linear,
 * not quadratic, copying.
 */
export class DatagramDecoder {
  private chunks: Buffer[] = [];
  private size = 0;

  /** The complete datagrams that `chunk` finishes, in order. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size < 2 || this.size < 2 + this.peekLength()) return [];
    const buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.size);
    const out: Buffer[] = [];
    let off = 0;
    while (buf.length - off >= 2) {
      const len = buf.readUInt16BE(off);
      if (buf.length - off < 2 + len) break;
      // Copied out, so a retained datagram does not pin the whole chunk it arrived in.
      out.push(Buffer.from(buf.subarray(off + 2, off + 2 + len)));
      off += 2 + len;
    }
    const rest = buf.subarray(off);
    this.chunks = rest.length ? [Buffer.from(rest)] : [];
    this.size = rest.length;
    return out;
  }

  /** Bytes of an unfinished datagram: non-zero at end of stream means it was cut off. */
  get partial(): number {
    return this.size;
  }

  /** The length prefix at the head, which may straddle the first two chunks. */
  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 2) return first.readUInt16BE(0);
    return (first[0]! << 8) | this.chunks[1]![0]!;
  }
}

export interface DatagramChannelEvents {
  datagram: [Buffer];
  /** The far end finished (FIN) or the stream failed (error set); no more datagrams either way. */
  end: [Error | undefined];
}

/**
 * A microtunnel stream as a datagram channel, for both ends of a UDP flow (agent and
 * connector). Sending never blocks: past `queueLimit` queued bytes a datagram is dropped and
 * counted, as a congested network would.
 */
export class DatagramChannel extends EventEmitter<DatagramChannelEvents> {
  private readonly decoder = new DatagramDecoder();
  private ended = false;
  dropped = 0;
  sent = 0;
  received = 0;

  constructor(
    readonly stream: Duplex,
    private readonly queueLimit = DEFAULT_DATAGRAM_QUEUE,
  ) {
    super();
    stream.on('data', (chunk: Buffer) => {
      for (const d of this.decoder.push(chunk)) {
        this.received++;
        this.emit('datagram', d);
      }
    });
    stream.once('end', () => this.finish(this.decoder.partial ? new Error(`stream ended inside a datagram (${this.decoder.partial} bytes)`) : undefined));
    stream.on('error', (err: Error) => this.finish(err));
    stream.once('close', () => this.finish(stream.readableEnded ? undefined : new Error('microtunnel closed')));
  }

  /** Queues one datagram; false when it was dropped (queue full or stream gone). */
  send(payload: Uint8Array): boolean {
    if (this.stream.destroyed || this.stream.writableEnded || payload.length > MAX_DATAGRAM) return this.drop();
    if (this.stream.writableLength > this.queueLimit) return this.drop();
    this.stream.write(encodeDatagram(payload));
    this.sent++;
    return true;
  }

  /** No more datagrams from us (FIN); the other direction may go on. */
  end(): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  destroy(err?: Error): void {
    this.stream.destroy(err);
  }

  private drop(): false {
    this.dropped++;
    return false;
  }

  private finish(err: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('end', err);
  }
}
