import type { Readable } from 'node:stream';

/** The peer sent FIN or vanished before a complete handshake message arrived. */
export class TruncatedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TruncatedError';
  }
}

/**
 * Reads exactly `n` bytes in paused mode. Unlike a 'data' listener this never takes more than
 * asked for: whatever the client pipelined after the handshake (early data, even its FIN)
 * stays in the stream's own buffer, in order, for the splice to pick up later. The buffer is
 * bounded by the stream's high-water mark, so a client cannot make us hoard bytes meanwhile.
 */
export function readExact(stream: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onClose);
    };
    const onReadable = (): void => {
      const chunk = stream.read(n) as Buffer | null;
      if (chunk === null) return; // not enough yet; 'readable' or 'end' will follow
      cleanup();
      // read(n) hands out a short remainder only when the stream has ended.
      if (chunk.length < n) reject(new TruncatedError(`truncated: got ${chunk.length} of ${n} bytes`));
      else resolve(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new TruncatedError('peer closed during handshake'));
    };
    const onClose = (): void => {
      cleanup();
      reject(new TruncatedError('socket closed during handshake'));
    };
    if (stream.destroyed) {
      reject(new TruncatedError('socket closed during handshake'));
      return;
    }
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('close', onClose);
    onReadable();
  });
}

/**
 * `n` bytes if the stream already holds them, else null (nothing consumed). Handshake parsers
 * try this first: a request that arrived in one segment is parsed without a promise per field.
 */
export function readNow(stream: Readable, n: number): Buffer | null {
  if (stream.destroyed || stream.readableLength < n) return null;
  return stream.read(n) as Buffer | null;
}
