import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { ProtocolError } from './errors.js';
import type { L4Protocol } from './segments.js';

/** What a microtunnel open names: the app by FQDN, never an IP of the user's network. */
export interface MicrotunnelTarget {
  proto: L4Protocol;
  host: string;
  port: number;
}

export interface MicrotunnelOpen extends MicrotunnelTarget {
  /** 32-bit tag chosen by the opener, unique among the open microtunnels of this hop. */
  tag: number;
}

export const TAG_HEADER = 'zcc-tag';
export const PROTO_HEADER = 'zcc-proto';
export const REASON_HEADER = 'zcc-reason';

const HOST_RE = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$/;

/** HTTP/2 request headers of an open: an RFC 9113 §8.5 CONNECT to host:port plus our tag. */
export function openHeaders(open: MicrotunnelOpen): OutgoingHttpHeaders {
  return {
    ':method': 'CONNECT',
    ':authority': `${open.host}:${open.port}`,
    [TAG_HEADER]: String(open.tag >>> 0),
    [PROTO_HEADER]: open.proto,
  };
}

/** Parses and validates an open; anything off is a `bad-open` that rejects only this stream. */
export function parseOpen(headers: IncomingHttpHeaders, where: string): MicrotunnelOpen {
  if (headers[':method'] !== 'CONNECT') throw new ProtocolError('bad-open', 'method must be CONNECT', where);
  const authority = single(headers[':authority']);
  const colon = authority?.lastIndexOf(':') ?? -1;
  if (!authority || colon <= 0) throw new ProtocolError('bad-open', 'authority must be host:port', where);
  const host = authority.slice(0, colon).toLowerCase();
  const port = Number(authority.slice(colon + 1));
  if (!HOST_RE.test(host)) throw new ProtocolError('bad-open', `invalid host ${JSON.stringify(host.slice(0, 64))}`, where);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ProtocolError('bad-open', 'port out of range', where);
  const tagText = single(headers[TAG_HEADER]);
  const tag = tagText !== undefined && /^\d{1,10}$/.test(tagText) ? Number(tagText) : NaN;
  if (!Number.isInteger(tag) || tag < 1 || tag > 0xffffffff) throw new ProtocolError('bad-open', 'tag must be a 32-bit unsigned integer > 0', where);
  const proto = single(headers[PROTO_HEADER]);
  if (proto !== 'tcp' && proto !== 'udp') throw new ProtocolError('bad-open', 'proto must be tcp or udp', where);
  return { tag, proto, host, port };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

/**
 * Why a microtunnel was refused or reset. Sent as `zcc-reason` on a refused open (with the
 * HTTP status below) and as the RST_STREAM error code once established. Codes sit above the
 * RFC 9113 range so a peer can tell ours from HTTP/2's own.
 */
export const RESET_REASONS = {
  'not-an-app': { code: 0x101, status: 404 },
  'port-not-in-segment': { code: 0x102, status: 404 },
  denied: { code: 0x103, status: 403 },
  'needs-reauth': { code: 0x104, status: 401 },
  'no-connector': { code: 0x105, status: 502 },
  unreachable: { code: 0x106, status: 504 },
  'connector-gone': { code: 0x107, status: 502 },
  'upstream-reset': { code: 0x108, status: 502 },
  'peer-reset': { code: 0x109, status: 499 },
  'idle-timeout': { code: 0x10a, status: 408 },
  'bad-open': { code: 0x10b, status: 400 },
  'duplicate-tag': { code: 0x10c, status: 409 },
  'edge-shutdown': { code: 0x10d, status: 503 },
  overloaded: { code: 0x10e, status: 503 },
} as const;

export type ResetReason = keyof typeof RESET_REASONS;

const BY_CODE = new Map<number, ResetReason>(
  Object.entries(RESET_REASONS).map(([name, v]) => [v.code, name as ResetReason]),
);

export function isResetReason(value: unknown): value is ResetReason {
  return typeof value === 'string' && Object.hasOwn(RESET_REASONS, value);
}

/** Maps an RST_STREAM code to our reason; HTTP/2's own codes come back as `peer-reset`. */
export function reasonFromCode(code: number | undefined): ResetReason {
  return (code !== undefined && BY_CODE.get(code)) || 'peer-reset';
}

/** A microtunnel refused or reset by the far side, with the reason it gave. */
export class MicrotunnelError extends Error {
  constructor(
    readonly reason: ResetReason,
    message?: string,
  ) {
    super(message ? `${reason}: ${message}` : reason);
    this.name = 'MicrotunnelError';
  }
}
