import koffi from 'koffi';
import { decodeSockaddrIn, encodeSockaddrIn, setIntOption, setTransparent, type Inet4Address } from './inet.js';
import {
  AF_INET,
  bind,
  close,
  getsockname,
  IP_ORIGDSTADDR,
  IP_RECVORIGDSTADDR,
  lastErrno,
  recvmsg,
  shutdown,
  SHUT_RDWR,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  socket,
  SOL_IP,
  SOL_SOCKET,
} from './libc.js';

/**
 * UDP under TPROXY. Node's dgram never hands out a datagram's destination address, and a
 * TPROXY listener gets datagrams for every synthetic IP:port, so the listener is read here with
 * recvmsg(2) and IP_RECVORIGDSTADDR. The blocking recvmsg runs on koffi's async worker thread
 * (libuv's pool), one call at a time, so the event loop never blocks; its buffers live in
 * native memory so that thread can fill them. Only the first datagrams of a flow come this
 * way: per-flow sockets (below) then take the flow's datagrams through ordinary libuv reads.
 */

/** A datagram with both ends: `to` is the synthetic IP:port the application sent to. */
export interface OrigDstDatagram {
  data: Buffer;
  from: Inet4Address;
  to: Inet4Address;
}

// struct msghdr on LP64 Linux: name ptr @0, namelen @8, iov ptr @16, iovlen @24,
// control ptr @32, controllen @40, flags @48; struct iovec is {ptr, len}.
const MSGHDR = 0;
const IOVEC = 56;
const NAME = 72;
const CONTROL = 88;
const CONTROL_LEN = 64;
const DATA = CONTROL + CONTROL_LEN;
const DATA_LEN = 65_536;
const TOTAL = DATA + DATA_LEN;
const MSG_TRUNC = 0x20;

function openUdp(what: string): number {
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket(${what}) failed: errno ${lastErrno()}`);
  return fd;
}

function bindTo(fd: number, addr: Inet4Address, what: string): void {
  const sa = encodeSockaddrIn(addr);
  if (bind(fd, sa, sa.length) !== 0) {
    const errno = lastErrno();
    close(fd);
    throw new Error(`bind(${what} ${addr.address}:${addr.port}) failed: errno ${errno}`);
  }
}

/** Reads TPROXY'd datagrams with their original destinations until stopped. */
export class OrigDstReceiver {
  private readonly fd: number;
  private readonly mem: unknown;
  private readonly view: Buffer;
  private reading = false;
  private stopped = false;
  private idle: (() => void) | null = null;

  constructor(
    listen: Inet4Address,
    private readonly onDatagram: (d: OrigDstDatagram) => void,
    private readonly onError: (err: Error) => void,
  ) {
    this.fd = openUdp('TPROXY UDP listener');
    try {
      setIntOption(this.fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
      setTransparent(this.fd);
      setIntOption(this.fd, SOL_IP, IP_RECVORIGDSTADDR, 1, 'IP_RECVORIGDSTADDR');
    } catch (err) {
      close(this.fd);
      throw err;
    }
    bindTo(this.fd, listen, 'TPROXY UDP listener');
    this.mem = koffi.alloc('uint8_t', TOTAL);
    this.view = Buffer.from(koffi.view(this.mem, TOTAL));
    const base = koffi.address(this.mem);
    this.view.writeBigUInt64LE(base + BigInt(NAME), MSGHDR);
    this.view.writeBigUInt64LE(base + BigInt(IOVEC), MSGHDR + 16);
    this.view.writeBigUInt64LE(1n, MSGHDR + 24);
    this.view.writeBigUInt64LE(base + BigInt(CONTROL), MSGHDR + 32);
    this.view.writeBigUInt64LE(base + BigInt(DATA), IOVEC);
    this.view.writeBigUInt64LE(BigInt(DATA_LEN), IOVEC + 8);
  }

  /** The address it is bound to (the port the kernel chose for port 0). */
  get address(): Inet4Address {
    const buf = Buffer.alloc(16);
    if (getsockname(this.fd, buf, [16]) !== 0) throw new Error(`getsockname failed: errno ${lastErrno()}`);
    return decodeSockaddrIn(buf);
  }

  start(): void {
    this.next();
  }

  /**
   * For process 'exit' handlers: wakes the blocked recvmsg at once. Without it the process
   * cannot exit, because libuv joins its pool threads and one of them sits in recvmsg.
   */
  interrupt(): void {
    this.stopped = true;
    shutdown(this.fd, SHUT_RDWR);
  }

  /** Wakes the blocked recvmsg (shutdown), waits for it to return, then frees everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    shutdown(this.fd, SHUT_RDWR);
    if (this.reading) await new Promise<void>((resolve) => (this.idle = resolve));
    close(this.fd);
    koffi.free(this.mem);
  }

  private next(): void {
    if (this.stopped) return;
    // The kernel shortens these on every call; reset them to the buffers' full sizes.
    this.view.writeUInt32LE(16, MSGHDR + 8);
    this.view.writeBigUInt64LE(BigInt(CONTROL_LEN), MSGHDR + 40);
    this.view.writeInt32LE(0, MSGHDR + 48);
    this.reading = true;
    recvmsg.async(this.fd, this.mem, 0, (err: unknown, n: number) => {
      this.reading = false;
      if (this.stopped) {
        this.idle?.();
        return;
      }
      if (err) this.onError(err instanceof Error ? err : new Error(String(err)));
      else if (n >= 0) this.deliver(n);
      // A failed call (n < 0) is a transient socket error (e.g. ICMP reported on the socket);
      // the listener must keep serving the other flows.
      setImmediate(() => this.next());
    });
  }

  private deliver(n: number): void {
    if ((this.view.readInt32LE(MSGHDR + 48) & MSG_TRUNC) !== 0) return;
    const to = this.origDst();
    if (!to) return this.onError(new Error('TPROXY datagram without IP_ORIGDSTADDR'));
    const data = Buffer.from(this.view.subarray(DATA, DATA + n));
    this.onDatagram({ data, from: decodeSockaddrIn(this.view, NAME), to });
  }

  /** Walks the control messages (struct cmsghdr: len u64, level i32, type i32, data @16). */
  private origDst(): Inet4Address | undefined {
    const total = Number(this.view.readBigUInt64LE(MSGHDR + 40));
    let off = 0;
    while (off + 16 <= total) {
      const len = Number(this.view.readBigUInt64LE(CONTROL + off));
      if (len < 16) return undefined;
      const level = this.view.readInt32LE(CONTROL + off + 8);
      const type = this.view.readInt32LE(CONTROL + off + 12);
      if (level === SOL_IP && type === IP_ORIGDSTADDR && len >= 32) return decodeSockaddrIn(this.view, CONTROL + off + 16);
      off += (len + 7) & ~7;
    }
    return undefined;
  }
}

/**
 * A UDP socket bound to the synthetic IP:port, for Node's dgram (`bind({ fd })`), which the
 * caller then connects to the client with dgram's own connect() (libuv refuses addressed sends
 * on a socket connected behind its back, and Node cannot send unaddressed on one it thinks is
 * unconnected). Replies leave from the address the application sent to, and once connected,
 * TPROXY's established-socket lookup finds it first, so the flow's later datagrams skip the
 * recvmsg path. SO_REUSEADDR lets flows of several clients share one synthetic IP:port.
 */
export function openFlowSocket(local: Inet4Address): number {
  const fd = openUdp('UDP flow');
  try {
    setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
    setTransparent(fd);
  } catch (err) {
    close(fd);
    throw err;
  }
  bindTo(fd, local, 'UDP flow');
  return fd;
}
