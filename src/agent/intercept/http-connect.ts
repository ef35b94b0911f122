import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DialTarget } from './dialer.js';
import { ProxyCore, ProxyFront, failureOf, type ConnFields, type FailureReason, type ProxyOptions } from './proxy-core.js';

/** The HTTP status for a failed CONNECT: policy refusals are 403, tunnel trouble 502/504. */
export function httpStatusFor(reason: FailureReason): number {
  switch (reason) {
    case 'not-an-app':
    case 'denied':
    case 'needs-reauth':
      return 403;
    case 'timeout':
      return 504;
    default:
      return 502;
  }
}

const REASON_PHRASE: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
};

/** A complete HTTP/1.1 response for a socket the http module no longer manages. */
function rawResponse(status: number, body: string, headers: Record<string, string> = {}): string {
  const lines = [`HTTP/1.1 ${status} ${REASON_PHRASE[status] ?? 'Error'}`];
  const all = { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' };
  for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** Parses a CONNECT request target (authority form): `host:port` or `[ipv6]:port`. */
export function parseAuthority(authority: string): DialTarget | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const v6 = m[1];
  if (v6 !== undefined) return net.isIPv6(v6) ? { host: v6.toLowerCase(), port } : undefined;
  // Same normalisation as SOCKS: one spelling per name for the policy lookup.
  const host = (m[2] ?? '').toLowerCase().replace(/\.$/, '');
  return host ? { host, port } : undefined;
}

/** HTTP CONNECT proxy front end; every other method is answered with 405. */
export class HttpConnectServer extends ProxyFront {
  /** Per-socket state between 'connection' and the request that arrives on it. */
  private readonly conns = new WeakMap<Socket, { conn: ConnFields; disarm: () => void }>();

  constructor(opts: ProxyOptions) {
    // http.Server always listens with allowHalfOpen; noDelay is its default but stated here
    // because it matters. Our own handshake timer replaces the request/header timeouts.
    const server = http.createServer({ noDelay: true, requestTimeout: 0, headersTimeout: 0, maxHeaderSize: 16 * 1024 });
    super(new ProxyCore(opts, 'http-connect'), server);
    server.on('connection', (socket: Socket) => {
      const conn = this.core.accept(socket);
      this.conns.set(socket, { conn, disarm: this.core.armHandshakeTimer(socket, conn) });
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.onConnect(req, socket as Socket, head);
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket as Socket));
  }

  private connOf(socket: Socket): { conn: ConnFields; disarm: () => void } {
    const c = this.conns.get(socket);
    if (!c) return { conn: {}, disarm: () => undefined };
    // Needed only until the request arrives: nothing of it stays with a spliced connection.
    this.conns.delete(socket);
    return c;
  }

  /** Plain proxying (absolute-URI GET etc.) is deliberately unsupported: only CONNECT. */
  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const { conn, disarm } = this.connOf(req.socket);
    disarm();
    this.core.fail('bad-request', conn, { method: req.method });
    const body = 'zcc proxy: only CONNECT is supported\n';
    res.writeHead(405, { Allow: 'CONNECT', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const { conn, disarm } = this.connOf(socket);
    disarm();
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    this.core.fail('bad-request', conn, { err: err.code ?? err.message });
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    this.core.endWithReply(socket, rawResponse(status, 'zcc proxy: malformed request\n'));
  }

  private async onConnect(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const { conn, disarm } = this.connOf(socket);
    disarm();
    // The http module has detached its parser; hold client bytes in the socket buffer until
    // the splice is attached, so nothing sent before our 200 is lost.
    socket.pause();
    const target = parseAuthority(req.url ?? '');
    if (!target) {
      this.core.fail('bad-request', conn, { err: 'bad CONNECT target' });
      this.core.endWithReply(socket, rawResponse(400, 'zcc proxy: CONNECT target must be host:port\n'));
      return;
    }
    const fields = { ...conn, host: target.host, port: target.port };
    this.core.log.debug(fields, 'connect requested');
    try {
      const remote = await this.core.dial(target, socket);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      this.core.tunnel(socket, remote, fields, head);
      // Debug only, as in SOCKS5: the edge logs every microtunnel it stitches.
      this.core.log.debug(fields, 'tunnel established');
    } catch (err) {
      const reason = failureOf(err);
      this.core.fail(reason, fields, { err: (err as Error).message });
      if (reason === 'client-gone') {
        socket.destroy();
        return;
      }
      const status = httpStatusFor(reason);
      this.core.endWithReply(socket, rawResponse(status, `zcc proxy: ${reason}\n`, { 'X-Zcc-Reason': reason }));
    }
  }
}
