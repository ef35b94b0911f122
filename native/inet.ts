import type { Server, Socket } from 'node:net';
import { AF_INET, getsockopt, IP_TRANSPARENT, lastErrno, setsockopt, SO_ORIGINAL_DST, SOL_IP } from './libc.js';

/** An IPv4 transport address. */
export interface Inet4Address {
  address: string;
  port: number;
}

/** struct sockaddr_in (16 bytes): family in host order, port and address in network order. */
export function encodeSockaddrIn(addr: Inet4Address): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(addr.port, 2);
  const octets = addr.address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`not an IPv4 address: ${addr.address}`);
  Buffer.from(octets).copy(b, 4);
  return b;
}

export function decodeSockaddrIn(b: Uint8Array, offset = 0): Inet4Address {
  const view = Buffer.from(b.buffer, b.byteOffset + offset, 16);
  if (view.readUInt16LE(0) !== AF_INET) throw new Error(`not an AF_INET sockaddr (family ${view.readUInt16LE(0)})`);
  return { port: view.readUInt16BE(2), address: `${view[4]}.${view[5]}.${view[6]}.${view[7]}` };
}

/** The file descriptor behind a libuv handle (net.Socket or net.Server; not public API). */
export function handleFd(s: Socket | Server): number {
  const handle = (s as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('no file descriptor behind this handle');
  return fd;
}

export function setIntOption(fd: number, level: number, name: number, value: number, what: string): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  if (setsockopt(fd, level, name, v, 4) !== 0) throw new Error(`setsockopt(${what}) failed: errno ${lastErrno()}`);
}

/**
 * IP_TRANSPARENT on a socket. The kernel checks it when a TPROXY rule looks for a listener
 * (nf_tproxy_sk_is_transparent), so setting it on an already listening socket is enough.
 * Needs CAP_NET_ADMIN (root).
 */
export function setTransparent(fd: number): void {
  setIntOption(fd, SOL_IP, IP_TRANSPARENT, 1, 'IP_TRANSPARENT');
}

/** The destination a connection had before an nft `redirect` changed it (conntrack). */
export function originalDst(fd: number): Inet4Address {
  const buf = Buffer.alloc(16);
  const len = [16];
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, buf, len) !== 0) throw new Error(`getsockopt(SO_ORIGINAL_DST) failed: errno ${lastErrno()}`);
  return decodeSockaddrIn(buf);
}
