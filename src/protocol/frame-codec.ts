import { ProtocolError } from './errors.js';

/** Upper bound of one control frame; a larger length prefix means a broken or hostile peer. */
export const MAX_CONTROL_FRAME = 1 << 20;

const HEADER = 4;

/** Encodes one control frame: u32 big-endian payload length, then the UTF-8 JSON payload. */
export function encodeFrame(payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  if (body.length > MAX_CONTROL_FRAME) {
    throw new ProtocolError('frame-too-large', `${body.length} bytes exceeds ${MAX_CONTROL_FRAME}`);
  }
  const frame = Buffer.allocUnsafe(HEADER + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, HEADER);
  return frame;
}

export type DecodedFrame = { ok: true; value: unknown } | { ok: false; error: ProtocolError };

/**
 * Incremental decoder for length-prefixed JSON frames. A bad JSON body is reported per frame and
 * decoding goes on (the length prefix kept the stream in sync); an oversized prefix is fatal
 * because nothing after it can be trusted to be a frame boundary.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private fatal: ProtocolError | null = null;

  constructor(
    private readonly where: string,
    private readonly maxFrame = MAX_CONTROL_FRAME,
  ) {}

  /** Feeds bytes; returns every frame completed by them. Throws once the stream is unrecoverable. */
  push(data: Buffer): DecodedFrame[] {
    if (this.fatal) throw this.fatal;
    this.chunks.push(data);
    this.buffered += data.length;
    const out: DecodedFrame[] = [];
    for (;;) {
      if (this.buffered < HEADER) break;
      const head = this.peek(HEADER);
      const length = head.readUInt32BE(0);
      if (length > this.maxFrame) {
        this.fatal = new ProtocolError('frame-too-large', `length prefix ${length} exceeds ${this.maxFrame}`, this.where);
        throw this.fatal;
      }
      if (this.buffered < HEADER + length) break;
      const body = this.take(HEADER + length).subarray(HEADER);
      out.push(parseBody(body, this.where));
    }
    return out;
  }

  /** Bytes of an unfinished frame left when the stream ended; non-zero means truncation. */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const frame = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }
}

function parseBody(body: Buffer, where: string): DecodedFrame {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
  } catch (err) {
    return { ok: false, error: new ProtocolError('bad-json', (err as Error).message, where) };
  }
}
