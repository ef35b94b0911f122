import type { Socket } from 'node:net';
import { getsockopt, lastErrno, SO_PEERCRED, SOL_SOCKET } from './libc.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** The file descriptor behind a connected Unix or TCP socket (libuv handle, not public API). */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no file descriptor');
  return fd;
}

/** SO_PEERCRED of a Unix-socket peer: who is really on the other end, as the kernel saw it. */
export function peerCredentials(socket: Socket): PeerCredentials {
  const buf = Buffer.alloc(12);
  const len = [12];
  if (getsockopt(socketFd(socket), SOL_SOCKET, SO_PEERCRED, buf, len) !== 0) {
    throw new Error(`getsockopt(SO_PEERCRED) failed: errno ${lastErrno()}`);
  }
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}
