import { parseIpv4 } from '../ipam/cidr.js';
import {
  CLASS_IN,
  FLAG_AA,
  FLAG_CD,
  FLAG_QR,
  FLAG_RA,
  FLAG_RD,
  FLAG_TC,
  HEADER_LEN,
  OPT_COOKIE,
  QTYPE,
  readU16,
  type Query,
  type ResponseInfo,
} from './wire.js';

/**
 * Building the responses the agent writes itself (app answers, errors, truncation) and the
 * few edits it makes to upstream responses. Responses repeat the client's question bytes
 * verbatim, so the answer name always equals the question name, case included.
 */

/** UDP payload size the agent advertises in its own OPT records (the DNS Flag Day 2020 value). */
export const ADVERTISED_UDP_SIZE = 1232;
/** Compression pointer to the question name, which always starts right after the header. */
const QNAME_POINTER = 0xc00c;
const OPCODE_MASK = 0x7800;

function header(id: number, flags: number, qd: number, an: number, ar: number): Buffer {
  const h = Buffer.alloc(HEADER_LEN);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(0, 8);
  h.writeUInt16BE(ar, 10);
  return h;
}

/** Our own OPT record: advertised size, version 0, DO echoed from the query (RFC 3225). */
function optRecord(dnssecOk: boolean): Buffer {
  const b = Buffer.alloc(11);
  b.writeUInt8(0, 0);
  b.writeUInt16BE(QTYPE.OPT, 1);
  b.writeUInt16BE(ADVERTISED_UDP_SIZE, 3);
  b.writeUInt32BE(dnssecOk ? 0x8000 : 0, 5);
  b.writeUInt16BE(0, 9);
  return b;
}

/** Flags of a reply: QR, RA, the query's opcode, RD and CD, plus the rcode. */
function replyFlags(queryFlags: number, rcode: number, extra = 0): number {
  return FLAG_QR | FLAG_RA | (queryFlags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | extra | (rcode & 0x0f);
}

/** A complete reply to `q` carrying `answers` (raw records), authoritative for app names. */
export function buildReply(q: Query, rcode: number, answers: readonly Buffer[] = [], authoritative = false): Buffer {
  const flags = replyFlags(q.flags, rcode, authoritative ? FLAG_AA : 0);
  const parts = [header(q.id, flags, 1, answers.length, q.edns ? 1 : 0), q.question, ...answers];
  if (q.edns) parts.push(optRecord(q.edns.dnssecOk));
  return Buffer.concat(parts);
}

/** An error reply for a message whose question could not be parsed: header only. */
export function headerOnlyReply(raw: Buffer, rcode: number): Buffer {
  return header(raw.readUInt16BE(0), replyFlags(raw.readUInt16BE(2), rcode), 0, 0, 0);
}

/**
 * The reply for a UDP client when the full answer does not fit its buffer: TC set, question
 * only, so the client retries over TCP (RFC 7766) and gets the whole answer there.
 */
export function truncatedReply(q: Query, full: Buffer): Buffer {
  const flags = (full.readUInt16BE(2) & ~OPCODE_MASK) | (q.flags & OPCODE_MASK) | FLAG_TC | FLAG_QR;
  const parts = [header(q.id, flags, 1, 0, q.edns ? 1 : 0), q.question];
  if (q.edns) parts.push(optRecord(q.edns.dnssecOk));
  return Buffer.concat(parts);
}

function record(type: number, ttl: number, rdata: Buffer): Buffer {
  const b = Buffer.alloc(12 + rdata.length);
  b.writeUInt16BE(QNAME_POINTER, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt16BE(CLASS_IN, 4);
  b.writeUInt32BE(ttl, 6);
  b.writeUInt16BE(rdata.length, 10);
  rdata.copy(b, 12);
  return b;
}

export function aRecord(ttl: number, ip: string): Buffer {
  const n = parseIpv4(ip);
  if (n === null) throw new RangeError(`not an IPv4 address: ${ip}`);
  const rdata = Buffer.alloc(4);
  rdata.writeUInt32BE(n, 0);
  return record(QTYPE.A, ttl, rdata);
}

/** Uncompressed wire form of a validated, normalised name (no escapes, no final dot). */
export function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split('.')) {
    const bytes = Buffer.from(label, 'ascii');
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function ptrRecord(ttl: number, target: string): Buffer {
  return record(QTYPE.PTR, ttl, encodeName(target));
}

/** A copy of `msg` with another ID: the only change made to a fresh upstream answer. */
export function withId(msg: Buffer, id: number): Buffer {
  const copy = Buffer.from(msg);
  copy.writeUInt16BE(id, 0);
  return copy;
}

/**
 * `msg` without EDNS COOKIE options. A cookie belongs to the client that sent it (RFC 7873),
 * so an answer kept in the cache for other clients must not replay it; everything else in
 * the OPT record stays. Returns `msg` itself when there is nothing to remove.
 */
export function stripCookie(msg: Buffer, info: ResponseInfo): Buffer {
  const opt = info.opt;
  if (!opt) return msg;
  const kept: Buffer[] = [];
  let removed = false;
  for (let off = opt.rdataStart; off + 4 <= opt.end; ) {
    const code = readU16(msg, off);
    const len = readU16(msg, off + 2);
    const next = Math.min(off + 4 + len, opt.end);
    if (code === OPT_COOKIE) removed = true;
    else kept.push(msg.subarray(off, next));
    off = next;
  }
  if (!removed) return msg;
  const rdata = Buffer.concat(kept);
  const head = Buffer.from(msg.subarray(opt.start, opt.rdataStart));
  head.writeUInt16BE(rdata.length, head.length - 2);
  return Buffer.concat([msg.subarray(0, opt.start), head, rdata, msg.subarray(opt.end)]);
}
