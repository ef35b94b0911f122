import net, { type Socket } from 'node:net';
import type { DialTarget } from './dialer.js';
import { ProxyCore, ProxyFront, failureOf, type FailureReason, type ProxyOptions } from './proxy-core.js';
import { readExact, readNow, TruncatedError } from './read-exact.js';

/** RFC 1928 §6 reply codes. */
export const SocksReply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

const VERSION = 0x05;
const NO_AUTH = 0x00;
const NO_ACCEPTABLE_METHOD = 0xff;
const CMD_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/** RFC 1123 host names (plus '_', which some internal zones use); no spaces or controls. */
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** The SOCKS reply code that best tells the client application why its connect failed. */
export function socksReplyFor(reason: FailureReason): number {
  switch (reason) {
    case 'not-an-app':
    case 'denied':
    case 'needs-reauth':
      return SocksReply.notAllowed;
    case 'unreachable':
      return SocksReply.hostUnreachable;
    case 'no-connector':
    case 'tunnel-down':
      return SocksReply.networkUnreachable;
    case 'reset':
      return SocksReply.connectionRefused;
    case 'timeout':
      return SocksReply.ttlExpired;
    default:
      return SocksReply.generalFailure;
  }
}

/** A handshake violation; `reply` is what to send before closing (none when unanswerable). */
class SocksProtocolError extends Error {
  constructor(
    message: string,
    readonly reply: Buffer | undefined,
  ) {
    super(message);
    this.name = 'SocksProtocolError';
  }
}

/** A reply with an all-zero IPv4 bind address: we have no meaningful one (the tunnel is remote). */
function requestReply(code: number): Buffer {
  return Buffer.from([VERSION, code, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0]);
}
const METHOD_REFUSED = Buffer.from([VERSION, NO_ACCEPTABLE_METHOD]);
const METHOD_NO_AUTH = Buffer.from([VERSION, NO_AUTH]);
const SUCCEEDED = requestReply(SocksReply.succeeded);

async function negotiateMethod(socket: Socket): Promise<void> {
  let head: Buffer;
  try {
    head = await readExact(socket, 2);
  } catch (err) {
    // Even a one-byte greeting deserves an answer the client can understand before we close.
    throw new SocksProtocolError((err as Error).message, METHOD_REFUSED);
  }
  const version = head[0] ?? 0;
  const count = head[1] ?? 0;
  if (version !== VERSION) throw new SocksProtocolError(`bad greeting version ${version}`, METHOD_REFUSED);
  if (count === 0) throw new SocksProtocolError('greeting offers no methods', METHOD_REFUSED);
  const methods =
    readNow(socket, count) ??
    (await readExact(socket, count).catch((err: Error) => {
      throw new SocksProtocolError(err.message, METHOD_REFUSED);
    }));
  if (!methods.includes(NO_AUTH)) throw new SocksProtocolError('client offers no acceptable method', METHOD_REFUSED);
  socket.write(METHOD_NO_AUTH);
}

function ipv6String(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The WHATWG URL parser produces the canonical compressed form (RFC 5952).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

async function readHost(socket: Socket, atyp: number): Promise<string> {
  switch (atyp) {
    case ATYP_IPV4:
      return [...(readNow(socket, 4) ?? (await readExact(socket, 4)))].join('.');
    case ATYP_IPV6:
      return ipv6String(readNow(socket, 16) ?? (await readExact(socket, 16)));
    case ATYP_DOMAIN: {
      const len = (readNow(socket, 1) ?? (await readExact(socket, 1)))[0] ?? 0;
      if (len === 0) throw new SocksProtocolError('empty domain name', requestReply(SocksReply.generalFailure));
      // DNS is case-insensitive and "app." is "app": normalise so policy sees one spelling.
      const name = (readNow(socket, len) ?? (await readExact(socket, len))).toString('latin1').toLowerCase().replace(/\.$/, '');
      if (!HOSTNAME.test(name)) throw new SocksProtocolError('invalid domain name', requestReply(SocksReply.generalFailure));
      return name;
    }
    default:
      throw new SocksProtocolError(`address type ${atyp}`, requestReply(SocksReply.addressTypeNotSupported));
  }
}

async function readRequest(socket: Socket): Promise<DialTarget> {
  try {
    const head = await readExact(socket, 4);
    if (head[0] !== VERSION) throw new SocksProtocolError(`bad request version ${head[0] ?? 0}`, requestReply(SocksReply.generalFailure));
    if (head[1] !== CMD_CONNECT) throw new SocksProtocolError(`command ${head[1] ?? 0}`, requestReply(SocksReply.commandNotSupported));
    const host = await readHost(socket, head[3] ?? 0);
    const port = (readNow(socket, 2) ?? (await readExact(socket, 2))).readUInt16BE(0);
    if (port === 0) throw new SocksProtocolError('port 0', requestReply(SocksReply.generalFailure));
    return { host, port };
  } catch (err) {
    if (err instanceof TruncatedError) throw new SocksProtocolError(err.message, requestReply(SocksReply.generalFailure));
    throw err;
  }
}

/** SOCKS5 (RFC 1928) front end: no-auth, CONNECT only, names resolved by the tunnel side. */
export class Socks5Server extends ProxyFront {
  constructor(opts: ProxyOptions) {
    // allowHalfOpen: a client FIN must not end our side, or the reply after a FIN is lost.
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    super(new ProxyCore(opts, 'socks5'), server);
    server.on('connection', (socket: Socket) => {
      void this.handle(socket);
    });
  }

  private async handle(socket: Socket): Promise<void> {
    const conn = this.core.accept(socket);
    const disarm = this.core.armHandshakeTimer(socket, conn);
    let target: DialTarget;
    try {
      await negotiateMethod(socket);
      target = await readRequest(socket);
    } catch (err) {
      disarm();
      // A destroyed socket was already accounted for (handshake timeout or server close).
      if (socket.destroyed) return;
      if (err instanceof SocksProtocolError) {
        this.core.fail('bad-request', conn, { err: err.message });
        if (err.reply) this.core.endWithReply(socket, err.reply);
        else socket.destroy();
      } else {
        this.core.fail('internal', conn, { err: (err as Error).message });
        socket.destroy();
      }
      return;
    }
    disarm();
    const fields = { ...conn, host: target.host, port: target.port };
    this.core.log.debug(fields, 'connect requested');
    try {
      const remote = await this.core.dial(target, socket);
      socket.write(SUCCEEDED);
      this.core.tunnel(socket, remote, fields);
      // One line per connection at debug only: the edge logs every microtunnel it stitches,
      // and a line written per connection is paid on the connection's critical path.
      this.core.log.debug(fields, 'tunnel established');
    } catch (err) {
      const reason = failureOf(err);
      this.core.fail(reason, fields, { err: (err as Error).message });
      if (reason === 'client-gone') socket.destroy();
      else this.core.endWithReply(socket, requestReply(socksReplyFor(reason)));
    }
  }
}
