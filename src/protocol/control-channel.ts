import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/log.js';
import { ProtocolError } from './errors.js';
import { encodeFrame, FrameDecoder } from './frame-codec.js';
import {
  ControlMessage,
  RESPONSE_OF,
  type HelloMessage,
  type RequestType,
  type ResponseOf,
  type ControlMessageOf,
} from './control-messages.js';
import { PROTOCOL_VERSION } from './version.js';

type Pending = { expect: string; resolve: (m: ControlMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export interface ControlChannelEvents {
  hello: [HelloMessage];
  message: [ControlMessage];
  /** A violation the channel survived (it answered with an `error` message). */
  violation: [ProtocolError];
  /** The channel cannot go on: the session must be torn down. */
  fatal: [ProtocolError];
}

/**
 * Typed control messages over one stream: hello first in each direction, then any message,
 * with request/response matched by id. Per-message faults are answered and survived; only a
 * broken framing or a version mismatch is fatal.
 */
export class ControlChannel extends EventEmitter<ControlChannelEvents> {
  private readonly decoder: FrameDecoder;
  private peerHello: HelloMessage | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(
    private readonly stream: Duplex,
    private readonly ownHello: HelloMessage,
    private readonly log: Logger,
    where: string,
  ) {
    super();
    this.decoder = new FrameDecoder(where);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => {
      if (this.decoder.pending > 0) this.fail(new ProtocolError('frame-truncated', `${this.decoder.pending} bytes of an unfinished frame`, where));
      this.shutdown(new ProtocolError('closed', 'control stream ended', where));
    });
    stream.on('close', () => this.shutdown(new ProtocolError('closed', 'control stream closed', where)));
    stream.on('error', (err) => this.log.debug({ err: err.message }, 'control stream error'));
    this.write(ownHello);
  }

  get hello(): HelloMessage | null {
    return this.peerHello;
  }

  send(message: ControlMessage): void {
    this.write(message);
  }

  /** Sends a request and resolves with its response, or rejects on timeout or close. */
  request<T extends RequestType>(
    type: T,
    body: Omit<ControlMessageOf<T>, 'id' | 'type'>,
    timeoutMs = 10_000,
  ): Promise<ResponseOf<T>> {
    if (this.closed) return Promise.reject(new ProtocolError('closed', 'control channel is closed'));
    const id = this.nextId++;
    if (this.nextId > 2 ** 31) this.nextId = 1;
    return new Promise<ResponseOf<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ProtocolError('timeout', `no ${RESPONSE_OF[type]} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { expect: RESPONSE_OF[type], resolve: resolve as (m: ControlMessage) => void, reject, timer });
      this.write({ ...body, type, id } as ControlMessage);
    });
  }

  private write(message: ControlMessage): void {
    if (this.closed || this.stream.destroyed || this.stream.writableEnded) return;
    this.stream.write(encodeFrame(message));
  }

  private onData(chunk: Buffer): void {
    // Once failed (or closed) nothing more from the peer is trusted or delivered; without this a
    // peer could follow a mismatched hello with a good one, or keep sending messages until the
    // session got round to tearing the stream down.
    if (this.closed) return;
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err as ProtocolError);
      return;
    }
    for (const frame of frames) {
      // A fatal frame stops the rest of the same chunk too (e.g. [hello v2][hello v1][probe]).
      if (this.closed) return;
      if (!frame.ok) {
        this.violation(frame.error);
        continue;
      }
      const parsed = ControlMessage.safeParse(frame.value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const path = issue?.path.join('.') || '(root)';
        this.violation(new ProtocolError('bad-message', `${path}: ${issue?.message ?? 'invalid'}`));
        continue;
      }
      this.dispatch(parsed.data);
    }
  }

  private dispatch(message: ControlMessage): void {
    if (message.type === 'hello') {
      if (this.peerHello) return this.violation(new ProtocolError('out-of-order', 'second hello'));
      if (message.version !== PROTOCOL_VERSION) {
        return this.fail(new ProtocolError('version-mismatch', `peer speaks v${message.version}, we speak v${PROTOCOL_VERSION}`));
      }
      this.peerHello = message;
      this.emit('hello', message);
      return;
    }
    if (!this.peerHello) return this.violation(new ProtocolError('out-of-order', `${message.type} before hello`));
    if (message.type === 'probe-result' || message.type === 'reach-result') {
      const waiting = this.pending.get(message.id);
      if (!waiting || waiting.expect !== message.type) {
        return this.violation(new ProtocolError('unknown-request', `${message.type} for unknown request ${message.id}`));
      }
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      waiting.resolve(message);
      return;
    }
    if (message.type === 'error') {
      this.log.warn({ code: message.code, ref: message.ref }, `peer reported: ${message.message}`);
    }
    this.emit('message', message);
  }

  private violation(err: ProtocolError): void {
    this.log.warn({ code: err.code }, `control message rejected: ${err.message}`);
    this.write({ type: 'error', code: err.code, message: err.message.slice(0, 1024) });
    this.emit('violation', err);
  }

  private fail(err: ProtocolError): void {
    if (this.closed) return;
    this.log.warn({ code: err.code }, `control channel failed: ${err.message}`);
    this.write({ type: 'error', code: err.code, message: err.message.slice(0, 1024) });
    this.emit('fatal', err);
    this.shutdown(err);
  }

  private shutdown(err: ProtocolError): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

export function makeHello(role: HelloMessage['role'], capabilities: readonly string[], software: string): HelloMessage {
  return { type: 'hello', version: PROTOCOL_VERSION, role, capabilities: [...capabilities], software };
}
