import { stripCookie } from './wire-build.js';
import { FLAG_CD, HEADER_LEN, RCODE, scanResponse, WireError, type Query } from './wire.js';

/**
 * Cache of forwarded (non-app) answers, kept in wire form. A hit is the upstream message
 * as received, with the client's ID and question bytes and every TTL lowered by the time
 * spent in the cache, so clients never hold a record longer than its owner allowed.
 *
 * What is cached (RFC 2308): NOERROR with answers for the smallest TTL in the message;
 * NXDOMAIN and NODATA for min(SOA TTL, SOA MINIMUM) from the authority section, and not
 * at all without an SOA. Truncated, SERVFAIL, REFUSED and other answers are never cached.
 */

export interface AnswerCacheOptions {
  maxEntries: number;
  /** Upper bound on how long any answer stays, whatever its TTLs say. */
  maxTtlSec: number;
  now: () => number;
}

interface Entry {
  msg: Buffer;
  ttlOffsets: number[];
  ttls: number[];
  questionLen: number;
  storedAt: number;
  expiresAt: number;
}

/**
 * Cache key: name (case-folded), type and class, plus the query properties that change what
 * the upstream sends back: EDNS present (an OPT in the answer), DO (DNSSEC records) and CD.
 */
export function cacheKey(q: Query): string {
  const edns = q.edns ? (q.edns.dnssecOk ? 'd' : 'e') : '-';
  const cd = (q.flags & FLAG_CD) !== 0 ? 'c' : '-';
  return `${q.qname.toLowerCase()}|${q.qtype}|${q.qclass}|${edns}${cd}`;
}

export class AnswerCache {
  // Map order is the LRU order: a hit re-inserts its key at the end.
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: AnswerCacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  /** The cached answer for `q`, ready to send (client ID, question and decremented TTLs). */
  get(key: string, q: Query): Buffer | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const now = this.opts.now();
    if (now >= e.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    const elapsed = Math.floor((now - e.storedAt) / 1000);
    const out = Buffer.from(e.msg);
    out.writeUInt16BE(q.id, 0);
    // Same name up to case (the key matched), so same length: the client sees its own spelling.
    if (q.question.length === e.questionLen) q.question.copy(out, HEADER_LEN);
    e.ttlOffsets.forEach((off, i) => out.writeUInt32BE(Math.max(0, (e.ttls[i] as number) - elapsed), off));
    return out;
  }

  /** Store an upstream answer if it is cacheable; returns whether it was stored. */
  put(key: string, response: Buffer): boolean {
    try {
      return this.store(key, response);
    } catch (e) {
      // The client already has this answer; one we cannot walk is simply not cached.
      if (e instanceof WireError) return false;
      throw e;
    }
  }

  private store(key: string, response: Buffer): boolean {
    const info = scanResponse(response);
    if (info.truncated) return false;
    let ttl: number | undefined;
    if (info.rcode === RCODE.NOERROR && info.answerCount > 0) {
      // RFC 2181 §8: a TTL with the top bit set means zero.
      ttl = Math.min(...info.records.map((r) => (r.ttl > 0x7fffffff ? 0 : r.ttl)));
    } else if (info.rcode === RCODE.NOERROR || info.rcode === RCODE.NXDOMAIN) {
      ttl = info.soaNegativeTtl;
    }
    if (ttl === undefined) return false;
    ttl = Math.min(ttl, this.opts.maxTtlSec);
    if (ttl <= 0) return false;
    const stripped = stripCookie(response, info);
    // Offsets move when a cookie was removed, so walk the message we actually keep.
    const kept = stripped === response ? info : scanResponse(stripped);
    const now = this.opts.now();
    // Unpooled: a small Buffer.from() copy is a view into a shared 8 KiB slab, which a cached
    // entry would keep alive whole for as long as it lives.
    const msg = Buffer.allocUnsafeSlow(stripped.length);
    stripped.copy(msg);
    msg.writeUInt16BE(0, 0);
    this.entries.delete(key);
    this.entries.set(key, {
      msg,
      ttlOffsets: kept.records.map((r) => r.ttlOffset),
      ttls: kept.records.map((r) => r.ttl),
      questionLen: kept.questionEnd - HEADER_LEN,
      storedAt: now,
      expiresAt: now + ttl * 1000,
    });
    while (this.entries.size > this.opts.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return true;
  }
}
