import type { Socket } from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import type { Logger } from '../common/log.js';
import { endedByReset } from './microtunnel-reset.js';

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
  /**
   * Fields of this connection for the splice's log lines (e.g. host, port, tag). Passed as data
   * rather than as a child logger: a logger per connection costs memory for as long as the
   * connection lives, and most connections never log anything.
   */
  fields?: Record<string, unknown>;
  /**
   * Called once with the result, like `done` but without a promise per connection (and, taking
   * the splice, it can be one function shared by every connection). Never before splice() has
   * returned: every outcome is reached from a stream event or a later turn.
   */
  onDone?: (result: SpliceResult, splice: Splice) => void;
}

/**
 * Bytes one direction may queue in its sink before its source is paused. Bounded per direction
 * whatever the speed mismatch; larger than the streams' own 16 KiB high-water marks so each
 * hop moves data in batches (one event-loop turn reads several chunks, the sink writes them at
 * once) instead of pausing and resuming its source around every chunk.
 */
export const SPLICE_BUFFER = 256 << 10;

const kSplice = Symbol('zcc.splice');
type Spliced = (Socket | Duplex) & { [kSplice]?: SpliceState };

/**
 * The state of one splice. Its listeners are the module-level functions below, which find it
 * through a symbol on the stream: no closures per connection, so an idle spliced connection
 * holds one small object besides its two streams.
 */
class SpliceState implements Splice, SpliceCounters {
  bytesUp = 0;
  bytesDown = 0;
  settled = false;
  // Up: local → remote. Down: remote → local.
  upSrcEnded = false;
  upDstFinished = false;
  upWaiting = false;
  upDone = false;
  downSrcEnded = false;
  downDstFinished = false;
  downWaiting = false;
  downDone = false;
  /** Tunnel data has reached the local socket in this event-loop turn (see onRemoteData). */
  inTurn = false;
  /** The local socket is corked until the end of this event-loop turn (see onRemoteData). */
  corked = false;
  result: SpliceResult | null = null;
  private donePromise: Promise<SpliceResult> | null = null;
  private resolveDone: ((r: SpliceResult) => void) | null = null;

  readonly fields: Record<string, unknown> | undefined;
  readonly onDone: SpliceOptions['onDone'];

  constructor(
    readonly local: Socket,
    readonly remote: Duplex,
    readonly log: Logger,
    opts: SpliceOptions,
  ) {
    this.fields = opts.fields;
    this.onDone = opts.onDone;
  }

  get counters(): Readonly<SpliceCounters> {
    return this;
  }

  get done(): Promise<SpliceResult> {
    if (!this.donePromise) {
      if (this.result) this.donePromise = Promise.resolve(this.result);
      else this.donePromise = new Promise<SpliceResult>((resolve) => (this.resolveDone = resolve));
    }
    return this.donePromise;
  }

  abort(err = new Error('splice aborted')): void {
    if (this.settled) return;
    this.local.resetAndDestroy();
    this.remote.destroy(err);
    this.settle('aborted', err);
  }

  settle(outcome: SpliceOutcome, error?: Error): void {
    if (this.settled) return;
    this.settled = true;
    const { bytesUp, bytesDown } = this;
    const fields = { ...this.fields, outcome, bytesUp, bytesDown };
    if (error) this.log.info({ ...fields, err: error.message }, 'splice torn down');
    else this.log.debug(fields, 'splice closed');
    this.result = error ? { bytesUp, bytesDown, outcome, error } : { bytesUp, bytesDown, outcome };
    this.resolveDone?.(this.result);
    this.onDone?.(this.result, this);
  }

  /** The client must see an RST, never a clean FIN, when the tunnel dies: a FIN would make a truncated download look complete. */
  remoteFailed(err: Error): void {
    if (this.settled) return;
    this.local.resetAndDestroy();
    if (!this.remote.destroyed) this.remote.destroy(err);
    this.settle('remote-reset', err);
  }

  localFailed(err: Error): void {
    if (this.settled) return;
    this.remote.destroy(err);
    if (!this.local.destroyed) this.local.resetAndDestroy();
    this.settle('local-reset', err);
  }

  directionDone(): void {
    if (!this.upDone || !this.downDone) return;
    // Both FINs delivered; destroy in case a custom Duplex has autoDestroy off. An HTTP/2
    // stream closes itself once END_STREAM went both ways.
    if (!this.remote.destroyed && !isHttp2Stream(this.remote)) this.remote.destroy();
    if (!this.local.destroyed) this.local.destroy();
    this.settle('closed');
  }

  upCheck(): void {
    if (this.upSrcEnded && this.upDstFinished && !this.upDone) {
      this.upDone = true;
      this.directionDone();
    }
  }

  downCheck(): void {
    if (this.downSrcEnded && this.downDstFinished && !this.downDone) {
      this.downDone = true;
      this.directionDone();
    }
  }

  upEnd(): void {
    this.upSrcEnded = true;
    this.remote.end();
    this.upCheck();
  }

  /** A FIN from a stream that is really being reset must become a reset: wait one I/O turn so an RST read with it is seen (see endedByReset). */
  downEnd(): void {
    setImmediate(() => {
      if (endedByReset(this.remote)) return this.remoteFailed(new Error('tunnel reset after its end of stream'));
      this.downSrcEnded = true;
      this.uncork();
      this.local.end();
      this.downCheck();
    });
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.local.uncork();
  }
}

function isHttp2Stream(s: Duplex): boolean {
  return 'session' in s && 'rstCode' in s;
}

/** Pauses `src` once `dst` holds SPLICE_BUFFER bytes; `onDrain` resumes it. */
function written(ok: boolean, dst: Writable): boolean {
  return !ok && dst.writableLength >= SPLICE_BUFFER;
}

function onLocalData(this: Spliced, chunk: Buffer): void {
  const s = this[kSplice] as SpliceState;
  s.bytesUp += chunk.length;
  if (written(s.remote.write(chunk), s.remote) && !s.upWaiting) {
    s.upWaiting = true;
    this.pause();
    s.remote.once('drain', onRemoteDrain); // only while a sink is full
  }
}

function onRemoteDrain(this: Spliced): void {
  const s = this[kSplice] as SpliceState;
  s.upWaiting = false;
  s.local.resume();
}

/**
 * Tunnel → client. An HTTP/2 stream delivers a TLS read as several chunks in one turn. The
 * first is written at once (a response's first bytes should not wait for the rest of the
 * turn's events); the client socket is then corked for the rest of the turn so the others
 * leave in one writev, not one write system call each.
 */
function onRemoteData(this: Spliced, chunk: Buffer): void {
  const s = this[kSplice] as SpliceState;
  s.bytesDown += chunk.length;
  if (!s.inTurn) {
    s.inTurn = true;
    setImmediate(endTurn, s);
  } else if (!s.corked) {
    s.corked = true;
    s.local.cork();
  }
  if (written(s.local.write(chunk), s.local) && !s.downWaiting) {
    s.downWaiting = true;
    this.pause();
    s.local.once('drain', onLocalDrain); // only while a sink is full
  }
}

function endTurn(s: SpliceState): void {
  s.inTurn = false;
  s.uncork();
}

function onLocalDrain(this: Spliced): void {
  const s = this[kSplice] as SpliceState;
  s.downWaiting = false;
  s.remote.resume();
}

function onLocalEnd(this: Spliced): void {
  (this[kSplice] as SpliceState).upEnd();
}

function onRemoteEnd(this: Spliced): void {
  (this[kSplice] as SpliceState).downEnd();
}

function onRemoteFinish(this: Spliced): void {
  const s = this[kSplice] as SpliceState;
  s.upDstFinished = true;
  s.upCheck();
}

function onLocalFinish(this: Spliced): void {
  const s = this[kSplice] as SpliceState;
  s.downDstFinished = true;
  s.downCheck();
}

function onRemoteError(this: Spliced, err: Error): void {
  (this[kSplice] as SpliceState).remoteFailed(err);
}

function onLocalError(this: Spliced, err: Error): void {
  (this[kSplice] as SpliceState).localFailed(err);
}

function onRemoteClose(this: Spliced): void {
  const s = this[kSplice] as SpliceState;
  if (s.settled) return;
  if (!s.remote.readableEnded) return s.remoteFailed(s.remote.errored ?? new Error('tunnel closed without end'));
  if (s.upDone) return; // both FINs crossed; the client's 'finish' completes the splice
  // The remote sent its FIN and then closed fully, like a TCP peer calling close(): let the
  // FIN reach the client, then close the client too so its further writes fail loudly
  // instead of vanishing into a destroyed stream.
  if (s.downDone || s.local.writableFinished) closeLocalAfterRemote.call(s.local);
  else s.local.on('finish', closeLocalAfterRemote);
}

function closeLocalAfterRemote(this: Spliced): void {
  const s = this[kSplice] as SpliceState;
  if (s.settled) return;
  s.local.destroy();
  s.settle('closed');
}

function onLocalClose(this: Spliced): void {
  const s = this[kSplice] as SpliceState;
  if (s.settled) return;
  // A clean close (both directions ended) is completed by the remote's 'finish'.
  if (s.local.readableEnded && s.local.writableFinished) return;
  s.localFailed(s.local.errored ?? new Error('client socket closed abruptly'));
}

/** Bidirectional copy between an accepted client socket and an established tunnel stream. */
export function splice(local: Socket, remote: Duplex, log: Logger, opts: SpliceOptions = {}): Splice {
  const s = new SpliceState(local, remote, log, opts);
  const l = local as Spliced;
  const r = remote as Spliced;
  l[kSplice] = s;
  r[kSplice] = s;
  // Error listeners stay for the lifetime of the streams so a late error can never crash us.
  // 'on', not 'once', for events that fire once anyway: once() allocates a wrapper and a bound
  // function per listener, kept for the connection's lifetime.
  remote.on('error', onRemoteError);
  local.on('error', onLocalError);
  remote.on('close', onRemoteClose);
  local.on('close', onLocalClose);

  if (opts.head && opts.head.length > 0) {
    s.bytesUp += opts.head.length;
    remote.write(opts.head);
  }
  // Backpressure: a source is paused whenever its sink holds SPLICE_BUFFER bytes, so memory
  // stays bounded whatever the speed mismatch. A FIN on a source becomes end() on its sink,
  // independently of the other direction (half-close).
  local.on('data', onLocalData);
  local.on('end', onLocalEnd);
  remote.on('finish', onRemoteFinish);
  remote.on('data', onRemoteData);
  remote.on('end', onRemoteEnd);
  local.on('finish', onLocalFinish);
  // A source whose FIN was consumed before we attached (possible after a handshake parser).
  if (local.readableEnded) s.upEnd();
  if (remote.readableEnded) s.downEnd();
  // The handshake code may have left either stream paused; flow now that sinks are attached.
  local.resume();
  remote.resume();
  return s;
}
