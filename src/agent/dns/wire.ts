/**
 * DNS wire-format parsing for the agent's resolver. Queries are parsed strictly (anything odd
 * is FORMERR); responses from upstream are only walked, never decoded and re-encoded, because
 * they are passed to the client byte for byte (only the ID and, from the cache, TTLs change)
 * and a decode/encode round trip would lose record types and options the library does not know.
 */

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const QTYPE = { A: 1, SOA: 6, PTR: 12, AAAA: 28, OPT: 41 } as const;
export const CLASS_IN = 1;
export const HEADER_LEN = 12;

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_CD = 0x0010;
const EDNS_DO = 0x8000;
/** EDNS option code of DNS cookies (RFC 7873). */
export const OPT_COOKIE = 10;

/** The message is not valid DNS; `offset` is where parsing gave up. */
export class WireError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
    this.name = 'WireError';
  }
}

export interface Edns {
  /** Requestor's UDP payload size as sent (may be below 512; callers clamp). */
  udpSize: number;
  dnssecOk: boolean;
}

export interface Query {
  id: number;
  /** The whole 16-bit flags word as received. */
  flags: number;
  /** Question name in presentation form, case preserved; odd bytes escaped as \DDD. */
  qname: string;
  qtype: number;
  qclass: number;
  /** Raw question section (name, type, class) exactly as received. */
  question: Buffer;
  edns?: Edns;
}

export interface ResponseRecord {
  type: number;
  /** Offset of the 32-bit TTL field. */
  ttlOffset: number;
  ttl: number;
  /** Offsets of the whole record, for splicing. */
  start: number;
  end: number;
  rdataStart: number;
}

export interface ResponseInfo {
  id: number;
  flags: number;
  rcode: number;
  truncated: boolean;
  questionEnd: number;
  answerCount: number;
  /** Every record except OPT (whose "TTL" carries EDNS flags, not a lifetime). */
  records: ResponseRecord[];
  /** Negative-caching TTL from an authority SOA: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5). */
  soaNegativeTtl?: number;
  opt?: ResponseRecord;
}

export function readU16(buf: Buffer, off: number): number {
  if (off + 2 > buf.length) throw new WireError('truncated field', off);
  return buf.readUInt16BE(off);
}

function readU32(buf: Buffer, off: number): number {
  if (off + 4 > buf.length) throw new WireError('truncated field', off);
  return buf.readUInt32BE(off);
}

/** Presentation form of one label: printable ASCII as is, everything else (and "." "\") escaped. */
function labelText(buf: Buffer, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const b = buf[i] as number;
    s += b > 0x20 && b < 0x7f && b !== 0x2e && b !== 0x5c ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`;
  }
  return s;
}

/**
 * Read a (possibly compressed) name starting at `off`. Returns the presentation form and the
 * offset just after the name in the original position. Pointers must point strictly backwards,
 * which rules out loops without a hop counter.
 */
export function readName(buf: Buffer, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = off;
  let end = -1;
  let wireLen = 1;
  for (;;) {
    if (pos >= buf.length) throw new WireError('name runs past the message', pos);
    const len = buf[pos] as number;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      const target = readU16(buf, pos) & 0x3fff;
      if (target >= pos) throw new WireError('compression pointer does not point backwards', pos);
      if (end < 0) end = pos + 2;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new WireError('unsupported label type', pos);
    if (pos + 1 + len > buf.length) throw new WireError('label runs past the message', pos);
    wireLen += len + 1;
    if (wireLen > 255) throw new WireError('name longer than 255 bytes', pos);
    labels.push(labelText(buf, pos + 1, len));
    pos += len + 1;
  }
  return { name: labels.length === 0 ? '.' : labels.join('.'), end };
}

interface RawRecord extends ResponseRecord {
  rclass: number;
}

function readRecord(buf: Buffer, off: number): RawRecord {
  const { end: nameEnd } = readName(buf, off);
  const type = readU16(buf, nameEnd);
  const rclass = readU16(buf, nameEnd + 2);
  const ttl = readU32(buf, nameEnd + 4);
  const rdlen = readU16(buf, nameEnd + 8);
  const rdataStart = nameEnd + 10;
  if (rdataStart + rdlen > buf.length) throw new WireError('record data runs past the message', rdataStart);
  return { type, rclass, ttl, ttlOffset: nameEnd + 4, start: off, end: rdataStart + rdlen, rdataStart };
}

/**
 * Parse a query strictly: exactly one question (RFC 9619), no answer records, at most one OPT
 * whose owner is the root, nothing after the last record. Throws WireError (→ FORMERR).
 * The caller has already checked the header length, the QR bit and the opcode.
 */
export function parseQuery(buf: Buffer): Query {
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if (buf.readUInt16BE(4) !== 1) throw new WireError('a query must carry exactly one question', 4);
  if (buf.readUInt16BE(6) !== 0) throw new WireError('a query must not carry answers', 6);
  const { name: qname, end } = readName(buf, HEADER_LEN);
  // Nothing precedes the question that a pointer could legitimately reference.
  if (hasPointer(buf, HEADER_LEN)) throw new WireError('compressed question name', HEADER_LEN);
  const qtype = readU16(buf, end);
  const qclass = readU16(buf, end + 2);
  const question = Buffer.from(buf.subarray(HEADER_LEN, end + 4));
  let off = end + 4;
  let edns: Edns | undefined;
  const rest = buf.readUInt16BE(8) + buf.readUInt16BE(10);
  for (let i = 0; i < rest; i++) {
    const rr = readRecord(buf, off);
    if (rr.type === QTYPE.OPT) {
      if (edns || buf[off] !== 0) throw new WireError('misplaced or repeated OPT record', off);
      edns = { udpSize: rr.rclass, dnssecOk: (rr.ttl & EDNS_DO) !== 0 };
    }
    off = rr.end;
  }
  if (off !== buf.length) throw new WireError('trailing bytes after the last record', off);
  return { id, flags, qname, qtype, qclass, question, ...(edns ? { edns } : {}) };
}

/** Whether the (already validated) name at `start` uses compression. */
function hasPointer(buf: Buffer, start: number): boolean {
  for (let pos = start; buf[pos] !== 0; pos += (buf[pos] as number) + 1) {
    if (((buf[pos] as number) & 0xc0) !== 0) return true;
  }
  return false;
}

/** Walk an upstream response: header, questions, every record's TTL position. Throws WireError. */
export function scanResponse(buf: Buffer): ResponseInfo {
  if (buf.length < HEADER_LEN) throw new WireError('shorter than a header', 0);
  const flags = buf.readUInt16BE(2);
  const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o)) as [number, number, number, number];
  let off = HEADER_LEN;
  for (let i = 0; i < qd; i++) off = readName(buf, off).end + 4;
  if (off > buf.length) throw new WireError('question runs past the message', off);
  const questionEnd = off;
  const records: ResponseRecord[] = [];
  let opt: ResponseRecord | undefined;
  let soaNegativeTtl: number | undefined;
  for (let i = 0; i < an + ns + ar; i++) {
    const rr = readRecord(buf, off);
    off = rr.end;
    const { rclass: _rclass, ...rec } = rr;
    if (rr.type === QTYPE.OPT) {
      opt = rec;
      continue;
    }
    records.push(rec);
    if (rr.type === QTYPE.SOA && i >= an && i < an + ns) {
      // SOA MINIMUM is the last 32-bit field of the RDATA.
      const minimum = readU32(buf, rr.end - 4);
      soaNegativeTtl = Math.min(rr.ttl, minimum);
    }
  }
  return {
    id: buf.readUInt16BE(0),
    flags,
    rcode: flags & 0x0f,
    truncated: (flags & FLAG_TC) !== 0,
    questionEnd,
    answerCount: an,
    records,
    ...(soaNegativeTtl !== undefined ? { soaNegativeTtl } : {}),
    ...(opt ? { opt } : {}),
  };
}

function asciiLower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
}

/** Same question, ignoring the case of the name (RFC 4343) but not of type and class bytes. */
export function sameQuestion(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length || a.length < 5) return false;
  const nameLen = a.length - 4;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (i < nameLen ? asciiLower(x) !== asciiLower(y) : x !== y) return false;
  }
  return true;
}
