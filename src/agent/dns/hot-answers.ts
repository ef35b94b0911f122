import { CLASS_IN, FLAG_CD, FLAG_QR, FLAG_RD, HEADER_LEN, QTYPE } from './wire.js';

/**
 * The hot path for repeated app-name queries over UDP: a cache of the reply bytes the full
 * path (wire.ts parseQuery → app-answers.ts → wire-build.ts) produced for a question, reused
 * with the client's ID and spelling patched in. An entry never stands on its own: before each
 * reuse the server re-checks synchronously everything the full path decides on — the name
 * still routes to the same app and tenant, the reachability verdict is still cached and
 * positive, and (A answers) the pool still maps the name to the same IP, touched exactly as
 * assign() touches it so the LRU recycling order stays right. A failed check, or anything the
 * peek below does not recognise, takes the full path, which answers and refills the entry.
 *
 * Why a second, hand-written parser: this one is performance code. parseQuery builds the
 * presentation form label by label (with \DDD escapes), copies the question and allocates a
 * Query per message; for the hot path only the header, the question bytes and a bare OPT
 * record are checked, and one latin1 string is sliced for the key. It accepts a strict subset
 * of what parseQuery accepts (one question, class IN, letters/digits/"-"/"_" labels, no
 * authority records, at most one OPT owned by the root) and returns undefined for everything
 * else, which then goes through parseQuery as before. parseQuery (and dns-packet in the tests)
 * remain the reference parsers; test/dns/hot-answers.test.ts checks the two agree.
 */

/** What the hot path needs from a query. */
export interface HotQuery {
  /**
   * Cache key: the question name in wire form with ASCII letters lower-cased, then QTYPE and
   * the query properties that change the reply bytes: RD and CD (copied into the reply's
   * flags), EDNS present and DO (our OPT record). The opcode is 0 and the class IN, always.
   */
  key: string;
  /** Offset just after the question name, i.e. of QTYPE. */
  nameEnd: number;
  /** Largest UDP reply the client accepts: 512 without EDNS, else its size within 512..4096. */
  udpLimit: number;
}

const OPCODE_MASK = 0x7800;
const MIN_UDP_PAYLOAD = 512;
const MAX_UDP_PAYLOAD = 4096;
const SHAPE_RD = 1;
const SHAPE_CD = 2;
const SHAPE_EDNS = 4;
const SHAPE_DO = 8;

/**
 * The hot-path view of a UDP query, or undefined when the full parser must look at it. Never
 * throws. A result implies parseQuery accepts the message with the same name (up to case),
 * QTYPE, class IN, flags and EDNS.
 */
export function peekQuery(raw: Buffer): HotQuery | undefined {
  const len = raw.length;
  if (len < HEADER_LEN + 5) return undefined;
  const flags = raw.readUInt16BE(2);
  if ((flags & (FLAG_QR | OPCODE_MASK)) !== 0) return undefined;
  // One question, no answer or authority records, at most one additional (the OPT).
  if (raw.readUInt16BE(4) !== 1 || raw.readUInt16BE(6) !== 0 || raw.readUInt16BE(8) !== 0) return undefined;
  const ar = raw.readUInt16BE(10);
  if (ar > 1) return undefined;
  let off = HEADER_LEN;
  let upper = false;
  for (;;) {
    const l = raw[off] as number;
    if (l === 0) break;
    // Also rules out compression pointers and the extended label types.
    if (l > 63 || off + 1 + l >= len) return undefined;
    const end = off + 1 + l;
    for (let i = off + 1; i < end; i++) {
      const c = raw[i] as number;
      if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) continue;
      if (c >= 0x41 && c <= 0x5a) {
        upper = true;
        continue;
      }
      return undefined;
    }
    off = end;
  }
  // The root name is never an app name; longer than 255 bytes is FORMERR.
  if (off === HEADER_LEN || off + 1 - HEADER_LEN > 255) return undefined;
  const nameEnd = off + 1;
  const qEnd = nameEnd + 4;
  if (qEnd > len || raw.readUInt16BE(nameEnd + 2) !== CLASS_IN) return undefined;
  let shape = ((flags & FLAG_RD) !== 0 ? SHAPE_RD : 0) | ((flags & FLAG_CD) !== 0 ? SHAPE_CD : 0);
  let udpLimit = MIN_UDP_PAYLOAD;
  if (ar === 0) {
    if (qEnd !== len) return undefined;
  } else {
    // OPT: root owner, TYPE 41, CLASS = UDP size, TTL = ext. rcode, version, DO + Z, RDLEN, RDATA.
    if (qEnd + 11 > len || raw[qEnd] !== 0 || raw.readUInt16BE(qEnd + 1) !== QTYPE.OPT) return undefined;
    if (qEnd + 11 + raw.readUInt16BE(qEnd + 9) !== len) return undefined;
    shape |= SHAPE_EDNS | (((raw[qEnd + 7] as number) & 0x80) !== 0 ? SHAPE_DO : 0);
    udpLimit = Math.min(Math.max(raw.readUInt16BE(qEnd + 3), MIN_UDP_PAYLOAD), MAX_UDP_PAYLOAD);
  }
  // Label bytes are letters, digits, "-" and "_" only, so toLowerCase is exactly ASCII folding.
  const name = raw.toString('latin1', HEADER_LEN, off);
  const key = (upper ? name.toLowerCase() : name) + String.fromCharCode(raw.readUInt16BE(nameEnd), shape);
  return { key, nameEnd, udpLimit };
}

/** What an app answer depended on, as the full path found it; re-checked before each reuse. */
export interface HotTarget {
  /** The question name, normalised. */
  name: string;
  /** The app it stands for (after search-domain completion) and its tenant. */
  fqdn: string;
  tenant: string;
  /** ReachabilityCache key of (tenant, fqdn). */
  reachKey: string;
  /** Synthetic IP (as a number) of an A answer; undefined for the empty NOERROR of other types. */
  ip?: number;
}

/** One shape for every entry, so the per-query reads of an entry stay monomorphic. */
class HotEntry implements HotTarget {
  constructor(
    readonly name: string,
    readonly fqdn: string,
    readonly tenant: string,
    readonly reachKey: string,
    readonly ip: number | undefined,
    /** The reply as the full path built it; copied for each reuse, never modified. */
    readonly reply: Buffer,
  ) {}
}

/** Decides whether a cached entry still answers its question (and touches the pool if so). */
export type HotCheck = (target: HotTarget) => boolean;

export class HotAnswers {
  // Insertion order: the oldest entry goes first when full. A miss only costs the full path.
  private readonly entries = new Map<string, HotEntry>();
  /** Replies served from here. */
  hits = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly stillValid: HotCheck,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  /** Remember the reply the full path sent for `raw`, when the peek understands `raw`. */
  remember(raw: Buffer, reply: Buffer, target: HotTarget): void {
    if (this.maxEntries === 0) return;
    const q = peekQuery(raw);
    if (!q || reply.length > q.udpLimit) return;
    // A copy of its own: a small Buffer is a view into a shared 8 KiB slab, which a long-lived
    // entry would otherwise keep alive whole.
    const own = Buffer.allocUnsafeSlow(reply.length);
    own.set(reply);
    this.entries.delete(q.key);
    this.entries.set(q.key, new HotEntry(target.name, target.fqdn, target.tenant, target.reachKey, target.ip, own));
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  /**
   * The reply to `raw` from the cache, with the client's ID and name spelling, or undefined
   * (not cached, not recognised, or no longer valid: the full path decides).
   */
  answer(raw: Buffer): Buffer | undefined {
    if (this.entries.size === 0) return undefined;
    const q = peekQuery(raw);
    if (!q) return undefined;
    const e = this.entries.get(q.key);
    if (!e) return undefined;
    if (e.reply.length > q.udpLimit || !this.stillValid(e)) {
      this.entries.delete(q.key);
      return undefined;
    }
    const out = Buffer.allocUnsafe(e.reply.length);
    // TypedArray set and a byte loop: Buffer.copy's argument handling costs more than these
    // few dozen bytes do.
    out.set(e.reply);
    // The ID, and the question name as the client spelled it (same length: equal up to case).
    out[0] = raw[0] as number;
    out[1] = raw[1] as number;
    for (let i = HEADER_LEN; i < q.nameEnd; i++) out[i] = raw[i] as number;
    this.hits += 1;
    return out;
  }
}
