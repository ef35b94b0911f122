import koffi from 'koffi';

/**
 * The few libc calls Node does not expose, through koffi (prebuilt FFI, no compiler needed at
 * install). Linux only; callers check `process.platform` first.
 */
const libc = koffi.load('libc.so.6');

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_PEERCRED = 17;

export const AF_INET = 2;
export const SOCK_DGRAM = 2;
/** Closed on exec, so a spawned `ip`/`nft` never inherits our sockets. */
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_IP = 0;
/** linux/in.h: accept and send for addresses that are not ours (TPROXY listeners). */
export const IP_TRANSPARENT = 19;
/** linux/in.h: deliver the pre-TPROXY destination as an IP_ORIGDSTADDR control message. */
export const IP_RECVORIGDSTADDR = 20;
export const IP_ORIGDSTADDR = 20;
/** linux/netfilter_ipv4.h: the destination before an nft `redirect`/DNAT, from conntrack. */
export const SO_ORIGINAL_DST = 80;

export const SHUT_RDWR = 2;

/** int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen) */
export const getsockopt = libc.func('int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)');

/** int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen) */
export const setsockopt = libc.func('int setsockopt(int fd, int level, int optname, const uint8_t *optval, uint32_t optlen)');

export const socket = libc.func('int socket(int domain, int type, int protocol)');
export const bind = libc.func('int bind(int fd, const uint8_t *addr, uint32_t addrlen)');
export const connect = libc.func('int connect(int fd, const uint8_t *addr, uint32_t addrlen)');
export const close = libc.func('int close(int fd)');
export const getsockname = libc.func('int getsockname(int fd, _Out_ uint8_t *addr, _Inout_ uint32_t *addrlen)');
export const shutdown = libc.func('int shutdown(int fd, int how)');

/**
 * ssize_t recvmsg(int fd, struct msghdr *msg, int flags). `msg` is native memory from
 * koffi.alloc (see native/udp-origdst.ts) so that it can be filled from koffi's worker thread
 * when called through `.async`. `long` is ssize_t on the LP64 Linux ABIs we run on.
 */
export const recvmsg = libc.func('long recvmsg(int fd, void *msg, int flags)');

/** errno of the last failed call, for error messages. */
export const errnoLocation = libc.func('int *__errno_location(void)');

export function lastErrno(): number {
  return koffi.decode(errnoLocation(), 'int') as number;
}
