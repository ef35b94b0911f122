import type { Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Logger } from '../common/log.js';
import { endedByReset } from './session.js';

/** Live byte counts; "up" is client → tunnel, "down" is tunnel → client. */
export interface SpliceCounters {
  bytesUp: number;
  bytesDown: number;
}

/**
 * - `closed`: both directions ended with a FIN (or the remote closed cleanly after its FIN).
 * - `remote-reset`: the tunnel errored or vanished without a FIN; the client got an RST.
 * - `local-reset`: the client socket errored or vanished; the tunnel was destroyed with an error.
 * - `aborted`: `abort()` was called (e.g. server shutdown); both sides were torn down.
 */
export type SpliceOutcome = 'closed' | 'remote-reset' | 'local-reset' | 'aborted';

export interface SpliceResult extends SpliceCounters {
  outcome: SpliceOutcome;
  error?: Error;
}

export interface Splice {
  /** Updated as bytes move, so callers can report live throughput. */
  readonly counters: Readonly<SpliceCounters>;
  /** Settles (never rejects) once both directions are done or the splice is torn down. */
  readonly done: Promise<SpliceResult>;
  /** Tear down: the client gets an RST, the tunnel is destroyed with `err`. */
  abort(err?: Error): void;
}

export interface SpliceOptions {
  /** Bytes already read from `local` (e.g. the HTTP parser's leftover) to send first. */
  head?: Buffer;
}

/**
 * One direction of the copy. Backpressure: the source is paused whenever the sink's buffer is
 * above its high-water mark, so memory stays bounded whatever the speed mismatch. A FIN on the
 * source becomes `end()` on the sink, independently of the other direction (half-close).
 */
function pump(src: Readable, dst: Writable, count: (n: number) => void, onDone: () => void, endIsReset?: () => boolean, onReset?: () => void): void {
  let srcEnded = false;
  let dstFinished = false;
  let waitingDrain = false;
  const check = (): void => {
    if (srcEnded && dstFinished) onDone();
  };
  const onDrain = (): void => {
    waitingDrain = false;
    src.resume();
  };
  src.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (!dst.write(chunk) && !waitingDrain) {
      waitingDrain = true;
      src.pause();
      dst.once('drain', onDrain);
    }
  });
  const onEnd = (): void => {
    srcEnded = true;
    dst.end();
    check();
  };
  // A FIN from a stream that is really being reset must become a reset, not a FIN: wait one
  // I/O turn so an RST read together with it is seen (see endedByReset).
  const onSourceEnd = (): void => {
    if (!endIsReset) return onEnd();
    setImmediate(() => (endIsReset() ? onReset?.() : onEnd()));
  };
  src.once('end', onSourceEnd);
  dst.once('finish', () => {
    dstFinished = true;
    check();
  });
  // A source whose FIN was consumed before we attached (possible after a handshake parser).
  if (src.readableEnded) onSourceEnd();
}

/** Bidirectional copy between an accepted client socket and an established tunnel stream. */
export function splice(local: Socket, remote: Duplex, log: Logger, opts: SpliceOptions = {}): Splice {
  const counters: SpliceCounters = { bytesUp: 0, bytesDown: 0 };
  let settled = false;
  let upDone = false;
  let downDone = false;
  let resolveDone: (r: SpliceResult) => void = () => undefined;
  const done = new Promise<SpliceResult>((resolve) => {
    resolveDone = resolve;
  });

  const settle = (outcome: SpliceOutcome, error?: Error): void => {
    if (settled) return;
    settled = true;
    const fields = { outcome, bytesUp: counters.bytesUp, bytesDown: counters.bytesDown };
    if (error) log.info({ ...fields, err: error.message }, 'splice torn down');
    else log.debug(fields, 'splice closed');
    resolveDone(error ? { ...counters, outcome, error } : { ...counters, outcome });
  };

  // The client must see an RST, never a clean FIN, when the tunnel dies: a FIN would make a
  // truncated download look complete.
  const remoteFailed = (err: Error): void => {
    if (settled) return;
    local.resetAndDestroy();
    if (!remote.destroyed) remote.destroy(err);
    settle('remote-reset', err);
  };
  const localFailed = (err: Error): void => {
    if (settled) return;
    remote.destroy(err);
    if (!local.destroyed) local.resetAndDestroy();
    settle('local-reset', err);
  };
  const directionDone = (): void => {
    if (!upDone || !downDone) return;
    // Both FINs delivered; destroy in case a custom Duplex has autoDestroy off.
    if (!remote.destroyed) remote.destroy();
    if (!local.destroyed) local.destroy();
    settle('closed');
  };

  // Error listeners stay for the lifetime of the streams so a late error can never crash us.
  remote.on('error', remoteFailed);
  local.on('error', localFailed);
  remote.once('close', () => {
    if (settled) return;
    if (!remote.readableEnded) {
      remoteFailed(remote.errored ?? new Error('tunnel closed without end'));
      return;
    }
    if (upDone) return; // both FINs crossed; the client's 'finish' completes the splice
    // The remote sent its FIN and then closed fully, like a TCP peer calling close(): let the
    // FIN reach the client, then close the client too so its further writes fail loudly
    // instead of vanishing into a destroyed stream.
    const closeLocal = (): void => {
      if (!settled) {
        local.destroy();
        settle('closed');
      }
    };
    if (downDone || local.writableFinished) closeLocal();
    else local.once('finish', closeLocal);
  });
  local.once('close', () => {
    if (settled) return;
    // A clean close (both directions ended) is completed by the remote's 'finish'.
    if (local.readableEnded && local.writableFinished) return;
    localFailed(local.errored ?? new Error('client socket closed abruptly'));
  });

  if (opts.head && opts.head.length > 0) {
    counters.bytesUp += opts.head.length;
    remote.write(opts.head);
  }
  pump(local, remote, (n) => (counters.bytesUp += n), () => {
    upDone = true;
    directionDone();
  });
  pump(
    remote,
    local,
    (n) => (counters.bytesDown += n),
    () => {
      downDone = true;
      directionDone();
    },
    () => endedByReset(remote),
    () => remoteFailed(new Error('tunnel reset after its end of stream')),
  );
  // The handshake code may have left either stream paused; flow now that sinks are attached.
  local.resume();
  remote.resume();

  return {
    counters,
    done,
    abort(err = new Error('splice aborted')): void {
      if (settled) return;
      local.resetAndDestroy();
      remote.destroy(err);
      settle('aborted', err);
    },
  };
}
