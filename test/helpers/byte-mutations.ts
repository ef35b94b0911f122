import fc from 'fast-check';

/** Structural damage to a byte stream: a flipped byte, a cut, a repeated, deleted or inserted run. */
export type ByteMutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; from: number; len: number }
  | { kind: 'delete'; from: number; len: number }
  | { kind: 'splice'; at: number; bytes: Uint8Array };

/** Mutations with runs of at most the given lengths. */
export function byteMutation(max: { duplicate: number; delete: number; splice: number }): fc.Arbitrary<ByteMutation> {
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), from: fc.nat(), len: fc.nat({ max: max.duplicate }) }),
    fc.record({ kind: fc.constant('delete' as const), from: fc.nat(), len: fc.nat({ max: max.delete }) }),
    fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: max.splice }) }),
  );
}

/** Applies a mutation; positions wrap around the data's length. */
export function mutate(data: Buffer, m: ByteMutation): Buffer {
  if (data.length === 0) return data;
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(data);
      const i = m.at % out.length;
      out[i] = (out[i] as number) ^ m.xor;
      return out;
    }
    case 'truncate':
      return data.subarray(0, m.at % data.length);
    case 'duplicate': {
      const from = m.from % data.length;
      const piece = data.subarray(from, from + m.len);
      return Buffer.concat([data.subarray(0, from + piece.length), piece, data.subarray(from + piece.length)]);
    }
    case 'delete': {
      const from = m.from % data.length;
      return Buffer.concat([data.subarray(0, from), data.subarray(from + m.len)]);
    }
    case 'splice': {
      const at = m.at % (data.length + 1);
      return Buffer.concat([data.subarray(0, at), Buffer.from(m.bytes), data.subarray(at)]);
    }
  }
}
