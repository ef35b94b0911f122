import type { Writable } from 'node:stream';

/**
 * Records how a Writable hands its data to the layer below: one entry per `_write` (1) or
 * `_writev` (its chunk count), in order. Used to check that relays write a turn's first chunk
 * at once and batch the rest of the turn.
 */
export function recordWrites(w: Writable): number[] {
  const calls: number[] = [];
  const target = w as Writable & {
    _write: (chunk: unknown, enc: BufferEncoding, cb: (err?: Error | null) => void) => void;
    _writev?: (chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: (err?: Error | null) => void) => void;
  };
  const write = target._write.bind(target);
  target._write = (chunk, enc, cb) => {
    calls.push(1);
    write(chunk, enc, cb);
  };
  const writev = target._writev?.bind(target);
  if (writev) {
    target._writev = (chunks, cb) => {
      calls.push(chunks.length);
      writev(chunks, cb);
    };
  }
  return calls;
}

/** Resolves after the current event-loop turn's immediates, i.e. once a relay's turn is over. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
