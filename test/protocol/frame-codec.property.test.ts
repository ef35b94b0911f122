import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/protocol/errors.js';
import { encodeFrame, FrameDecoder, MAX_CONTROL_FRAME, type DecodedFrame } from '../../src/protocol/frame-codec.js';
import { byteMutation, mutate } from '../helpers/byte-mutations.js';

/** Splits `data` at the given cut points (any values; reduced modulo the length, deduplicated). */
function split(data: Buffer, cuts: readonly number[]): Buffer[] {
  if (data.length === 0) return [data];
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(data.subarray(from, p)); // zero-length chunks included on purpose
    from = p;
  }
  out.push(data.subarray(from));
  return out;
}

interface Outcome {
  frames: DecodedFrame[];
  fatal: ProtocolError | null;
}

/** Feeds chunks until the decoder throws; anything thrown that is not a ProtocolError escapes. */
function feed(decoder: FrameDecoder, chunks: readonly Buffer[]): Outcome {
  const frames: DecodedFrame[] = [];
  for (const chunk of chunks) {
    try {
      frames.push(...decoder.push(chunk));
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return { frames, fatal: err };
    }
  }
  return { frames, fatal: null };
}

function rawFrame(body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** JSON values with any UTF-16 content (lone surrogates, astral characters) in strings and keys. */
const jsonValue = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' });
const cuts = fc.array(fc.nat(), { maxLength: 24 });

describe('encodeFrame / FrameDecoder round trip', () => {
  it('decodes every encoded value, however the byte stream is chunked', () => {
    fc.assert(
      fc.property(fc.array(jsonValue, { minLength: 1, maxLength: 12 }), cuts, (values, at) => {
        const stream = Buffer.concat(values.map((v) => encodeFrame(v)));
        const decoder = new FrameDecoder('test');
        const { frames, fatal } = feed(decoder, split(stream, at));
        expect(fatal).toBeNull();
        expect(decoder.pending).toBe(0);
        // JSON itself is the reference: -0 becomes 0, lone surrogates survive as escapes.
        expect(frames).toEqual(values.map((v) => ({ ok: true, value: JSON.parse(JSON.stringify(v)) as unknown })));
      }),
      { numRuns: 300 },
    );
  });

  it('delivers a frame only once its last byte arrived, byte by byte', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        const frame = encodeFrame(value);
        const decoder = new FrameDecoder('test');
        for (let i = 0; i < frame.length - 1; i++) {
          expect(decoder.push(frame.subarray(i, i + 1))).toEqual([]);
          expect(decoder.pending).toBe(i + 1);
        }
        expect(decoder.push(frame.subarray(frame.length - 1))).toHaveLength(1);
        expect(decoder.pending).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses to encode a payload above the limit and accepts one of exactly the limit', () => {
    expect(() => encodeFrame('x'.repeat(MAX_CONTROL_FRAME))).toThrow(expect.objectContaining({ code: 'frame-too-large' }));
    expect(encodeFrame('x'.repeat(MAX_CONTROL_FRAME - 2)).length).toBe(4 + MAX_CONTROL_FRAME);
  });
});

describe('FrameDecoder on hostile input', () => {
  it('random bytes in random chunks: returns frames or throws a ProtocolError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), cuts, (bytes, at) => {
        const decoder = new FrameDecoder('test');
        const { frames, fatal } = feed(decoder, split(Buffer.from(bytes), at));
        for (const f of frames) if (!f.ok) expect(f.error.code).toBe('bad-json');
        if (fatal) expect(fatal.code).toBe('frame-too-large');
      }),
      { numRuns: 300 },
    );
  });

  // A valid stream of frames, then structural mutations of it.
  const mutation = byteMutation({ duplicate: 64, delete: 16, splice: 16 });

  it('mutated valid streams: frames decode, bodies fail as bad-json, prefixes fail as frame-too-large', () => {
    fc.assert(
      fc.property(
        fc.array(jsonValue, { minLength: 1, maxLength: 6 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        cuts,
        (values, mutations, at) => {
          const stream = mutations.reduce(mutate, Buffer.concat(values.map((v) => encodeFrame(v))));
          const decoder = new FrameDecoder('test');
          const { frames, fatal } = feed(decoder, split(stream, at));
          for (const f of frames) if (!f.ok) expect(f.error.code).toBe('bad-json');
          if (fatal) {
            expect(fatal.code).toBe('frame-too-large');
            // Unrecoverable: every later push throws the same error.
            expect(() => decoder.push(Buffer.from(encodeFrame({ ok: 1 })))).toThrow(fatal);
          } else {
            expect(decoder.pending).toBeLessThanOrEqual(stream.length);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('an oversized length prefix is fatal at once, whatever came before and after it', () => {
    fc.assert(
      fc.property(
        fc.array(jsonValue, { maxLength: 4 }),
        fc.integer({ min: MAX_CONTROL_FRAME + 1, max: 0xffffffff }),
        fc.uint8Array({ maxLength: 64 }),
        cuts,
        (before, length, after, at) => {
          const head = Buffer.alloc(4);
          head.writeUInt32BE(length, 0);
          const stream = Buffer.concat([...before.map((v) => encodeFrame(v)), head, Buffer.from(after)]);
          const decoder = new FrameDecoder('ctl');
          const { frames, fatal } = feed(decoder, split(stream, at));
          expect(fatal).toBeInstanceOf(ProtocolError);
          expect(fatal?.code).toBe('frame-too-large');
          expect(fatal?.where).toBe('ctl');
          // Frames completed in earlier pushes were delivered intact (the fatal push may drop the
          // ones it completed: the stream is being torn down anyway).
          expect(frames.length).toBeLessThanOrEqual(before.length);
          expect(frames.every((f) => f.ok)).toBe(true);
          expect(() => decoder.push(encodeFrame(1))).toThrow(fatal as ProtocolError);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('honours a smaller custom limit and accepts a frame of exactly the limit', () => {
    const decoder = new FrameDecoder('small', 8);
    expect(decoder.push(rawFrame(Buffer.from('"123456"')))).toEqual([{ ok: true, value: '123456' }]);
    expect(() => decoder.push(rawFrame(Buffer.from('"1234567"')))).toThrow(expect.objectContaining({ code: 'frame-too-large' }));
  });

  it('a bad JSON body is reported for that frame only and decoding continues in sync', () => {
    const badBody = fc.oneof(
      fc.constant(''),
      fc.constant('{'),
      fc.constant('{"type":"hello",}'),
      fc.constant('undefined'),
      fc.constant('NaN'),
      fc.constant('\u0000'),
      fc.constant('[1,2'),
      fc.constant('"unterminated'),
      // Random bytes that happen to be valid JSON are simply values; filter them out.
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
    ).filter((s) => {
      try {
        JSON.parse(Buffer.from(s, 'latin1').toString('utf8'));
        return false;
      } catch {
        return true;
      }
    });
    const item = fc.oneof(
      jsonValue.map((v) => ({ good: true as const, value: v })),
      badBody.map((s) => ({ good: false as const, body: Buffer.from(s, 'latin1') })),
    );
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 10 }), cuts, (items, at) => {
        const stream = Buffer.concat(items.map((i) => (i.good ? encodeFrame(i.value) : rawFrame(i.body))));
        const decoder = new FrameDecoder('ctl');
        const { frames, fatal } = feed(decoder, split(stream, at));
        expect(fatal).toBeNull();
        expect(frames).toHaveLength(items.length);
        items.forEach((item, n) => {
          const f = frames[n] as DecodedFrame;
          if (item.good) {
            expect(f).toEqual({ ok: true, value: JSON.parse(JSON.stringify(item.value)) as unknown });
          } else {
            expect(f.ok).toBe(false);
            if (!f.ok) {
              expect(f.error.code).toBe('bad-json');
              expect(f.error.where).toBe('ctl');
            }
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it('a zero-length frame is bad JSON, not a stall', () => {
    const decoder = new FrameDecoder('ctl');
    const out = decoder.push(Buffer.concat([rawFrame(Buffer.alloc(0)), encodeFrame('next')]));
    expect(out).toHaveLength(2);
    expect(out[0]?.ok).toBe(false);
    expect(out[1]).toEqual({ ok: true, value: 'next' });
  });

  it('a frame of the maximum size split into many chunks decodes in linear time', () => {
    const value = 'y'.repeat(MAX_CONTROL_FRAME - 2);
    const frame = encodeFrame(value);
    const decoder = new FrameDecoder('ctl');
    const started = performance.now();
    let out: DecodedFrame[] = [];
    for (let i = 0; i < frame.length; i += 97) out = out.concat(decoder.push(frame.subarray(i, i + 97)));
    expect(out).toEqual([{ ok: true, value }]);
    // ~10 800 pushes: a quadratic re-concatenation would copy ~5 GB and take far longer.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
