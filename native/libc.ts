import koffi from 'koffi';

/**
 * The few libc calls Node does not expose, through koffi (prebuilt FFI, no compiler needed at
 * install). Linux only; callers check `process.platform` first.
 */
const libc = koffi.load('libc.so.6');

export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;

/** int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen) */
export const getsockopt = libc.func('int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)');

/** errno of the last failed call, for error messages. */
export const errnoLocation = libc.func('int *__errno_location(void)');

export function lastErrno(): number {
  return koffi.decode(errnoLocation(), 'int') as number;
}
