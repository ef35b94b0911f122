import net from 'node:net';
import { FLAG_QR, HEADER_LEN, sameQuestion, scanResponse, WireError, type ResponseInfo } from './wire.js';

/**
 * Upstream resolver addresses, and one query/answer exchange over TCP (a connection each).
 * UDP exchanges go over pooled, rotated sockets: upstream-udp.ts.
 */

export interface Upstream {
  host: string;
  port: number;
  /** "host:port" (IPv6 in brackets), for logs and loop detection. */
  label: string;
}

/** Thrown for an upstream entry that is not "ip", "ip:port", "[ipv6]" or "[ipv6]:port". */
export class InvalidUpstreamError extends Error {
  constructor(readonly input: string) {
    super(`invalid upstream resolver ${JSON.stringify(input)}: expected ip[:port], IPv6 as [addr]:port`);
    this.name = 'InvalidUpstreamError';
  }
}

export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parse an upstream address. Only IP literals: resolving a resolver's name would need DNS. */
export function parseUpstream(input: string): Upstream {
  let host = input;
  let portText = '53';
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(input);
  if (bracket) {
    host = bracket[1] as string;
    portText = bracket[2] ?? '53';
    if (!net.isIPv6(host)) throw new InvalidUpstreamError(input);
  } else if (!net.isIPv6(input)) {
    const m = /^([^:]+)(?::(\d+))?$/.exec(input);
    if (!m || !net.isIPv4(m[1] as string)) throw new InvalidUpstreamError(input);
    host = m[1] as string;
    portText = m[2] ?? '53';
  }
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) throw new InvalidUpstreamError(input);
  return { host, port, label: formatHostPort(host, port) };
}

export interface Exchanged {
  msg: Buffer;
  info: ResponseInfo;
}

/**
 * Whether `msg` answers `query` (whose question section ends at `questionEnd`): a response
 * with the same ID and the same question, up to the case of the name.
 */
export function answerInfo(query: Buffer, questionEnd: number, msg: Buffer): ResponseInfo | undefined {
  try {
    const info = scanResponse(msg);
    if ((info.flags & FLAG_QR) === 0 || info.id !== query.readUInt16BE(0)) return undefined;
    if (!sameQuestion(query.subarray(HEADER_LEN, questionEnd), msg.subarray(HEADER_LEN, info.questionEnd))) return undefined;
    return info;
  } catch (e) {
    if (e instanceof WireError) return undefined;
    throw e;
  }
}

function matches(query: Buffer, msg: Buffer): ResponseInfo | undefined {
  let questionEnd: number;
  try {
    questionEnd = scanResponse(query).questionEnd;
  } catch (e) {
    if (e instanceof WireError) return undefined;
    throw e;
  }
  return answerInfo(query, questionEnd, msg);
}

/** Largest answer accepted over TCP: the 16-bit length prefix allows no more. */
const MAX_TCP_MESSAGE = 65_535;

export function tcpExchange(up: Upstream, query: Buffer, timeoutMs: number): Promise<Exchanged> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: up.host, port: up.port });
    let buffered = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | undefined, value?: Exchanged): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value as Exchanged);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from ${up.label} within ${timeoutMs} ms (tcp)`)), timeoutMs);
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish(new Error(`${up.label} closed the TCP connection before answering`)));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length, 0);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2) return;
      const need = buffered.readUInt16BE(0);
      if (buffered.length > 2 + MAX_TCP_MESSAGE) return finish(new Error(`${up.label} sent more than one message`));
      if (buffered.length < 2 + need) return;
      const msg = Buffer.from(buffered.subarray(2, 2 + need));
      const info = matches(query, msg);
      if (info) finish(undefined, { msg, info });
      else finish(new Error(`${up.label} sent a TCP answer that does not match the query`));
    });
  });
}
