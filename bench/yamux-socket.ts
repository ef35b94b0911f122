// Runs @chainsafe/libp2p-yamux directly over a Node TLS socket (no libp2p node, no Noise): a
// minimal MessageStream adapter in the style of libp2p's own TCP connection, plus a factory.
import './polyfill.js';
import { yamux } from '@chainsafe/libp2p-yamux';
import { defaultLogger } from '@libp2p/logger';
import { AbstractMessageStream, type SendResult } from '@libp2p/utils';
import type { Socket } from 'node:net';
import type { Uint8ArrayList } from 'uint8arraylist';

/** The muxer type is not exported by name; derive it from the factory. */
export type YamuxMuxer = ReturnType<ReturnType<ReturnType<typeof yamux>>['createStreamMuxer']>;

/** Wraps a connected (TLS) socket as the MessageStream a libp2p muxer reads from and writes to. */
export class SocketMessageStream extends AbstractMessageStream {
  private readonly socket: Socket;

  constructor(socket: Socket, direction: 'inbound' | 'outbound') {
    super({ log: defaultLogger().forComponent(`zcc:bench:yamux:${direction}`), direction });
    this.socket = socket;
    socket.on('data', (buf: Buffer) => {
      this.onData(buf);
    });
    socket.on('drain', () => {
      this.safeDispatchEvent('drain');
    });
    socket.on('error', (err: Error) => {
      this.abort(err);
    });
    socket.once('close', () => {
      this.onTransportClosed();
    });
  }

  sendData(data: Uint8ArrayList): SendResult {
    // A yamux data frame arrives as [12-byte header, payload]; cork so the TLS layer seals them
    // into one record instead of a 12-byte record followed by a payload record.
    let canSendMore = true;
    this.socket.cork();
    for (const buf of data) canSendMore = this.socket.write(buf);
    this.socket.uncork();
    return { sentBytes: data.byteLength, canSendMore };
  }

  sendReset(): void {
    this.socket.destroy();
  }

  sendPause(): void {
    this.socket.pause();
  }

  sendResume(): void {
    this.socket.resume();
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}

export interface YamuxWindows {
  /** Initial per-stream receive window in bytes (yamux default 256 KiB, auto-grows by RTT). */
  initialStreamWindowSize?: number;
  maxStreamWindowSize?: number;
}

export function createYamux(socket: Socket, direction: 'inbound' | 'outbound', windows: YamuxWindows): YamuxMuxer {
  const factory = yamux({
    enableKeepAlive: true,
    maxInboundStreams: 10_000,
    maxOutboundStreams: 10_000,
    streamOptions: { ...windows },
  })();
  return factory.createStreamMuxer(new SocketMessageStream(socket, direction));
}
