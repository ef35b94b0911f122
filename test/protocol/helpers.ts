import { once } from 'node:events';
import type { Http2Stream } from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { silentLogger, type Logger } from '../../src/common/log.js';
import { makeHello } from '../../src/protocol/control-channel.js';
import type { HelloMessage } from '../../src/protocol/control-messages.js';
import { encodeFrame } from '../../src/protocol/frame-codec.js';
import { ZTunnelSession, type SessionOptions } from '../../src/protocol/session.js';
import { tunnelClientOptions, tunnelServerOptions, type TlsIdentity } from '../../src/protocol/tls.js';
import { CAPABILITIES, CONTROL_PATH } from '../../src/protocol/version.js';

export interface SocketPair<S extends net.Socket = net.Socket> {
  client: S;
  server: S;
}

export async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Two ends of one loopback TCP connection. */
export async function tcpPair(): Promise<SocketPair> {
  const server = net.createServer();
  const port = await listen(server);
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect(port, '127.0.0.1');
  const [[serverSide]] = await Promise.all([accepted, once(client, 'connect')]);
  server.close();
  return { client, server: serverSide };
}

export interface TlsMaterial {
  server: TlsIdentity;
  client: TlsIdentity;
  /** Roots the server trusts for client certificates. */
  clientRoots: string[];
  /** The pinned CA the client trusts for the server. */
  serverRoot: string;
  servername: string;
}

/** Two ends of one mutual TLS 1.3 connection with the Z-Tunnel ALPN, as edge and agent use it. */
export async function tlsPair(m: TlsMaterial): Promise<SocketPair<tls.TLSSocket>> {
  const server = tls.createServer(tunnelServerOptions(m.server, m.clientRoots));
  const port = await listen(server);
  const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
  const client = tls.connect({ ...tunnelClientOptions(m.client, m.serverRoot, m.servername), host: '127.0.0.1', port });
  const [[serverSide]] = await Promise.all([accepted, once(client, 'secureConnect')]);
  server.close();
  return { client, server: serverSide };
}

export function sessionOptions(where: string, role: HelloMessage['role'], extra: Partial<SessionOptions> = {}, log: Logger = silentLogger): SessionOptions {
  return { log, hello: makeHello(role, ['test', ...CAPABILITIES], `zcc-test ${where}`), where, ...extra };
}

export interface SessionPair {
  client: ZTunnelSession;
  server: ZTunnelSession;
  /** Destroys both sessions and waits until both reported close. */
  close(): Promise<void>;
}

/**
 * A ready ZTunnelSession pair over `sockets` (a plain TCP pair is cast: HTTP/2 and the session
 * use nothing TLS-specific of the socket).
 */
export async function sessionPair(sockets: SocketPair, extra: Partial<SessionOptions> = {}): Promise<SessionPair> {
  const server = ZTunnelSession.server(sockets.server as tls.TLSSocket, sessionOptions('server', 'edge', extra));
  const client = ZTunnelSession.client(sockets.client as tls.TLSSocket, sessionOptions('client', 'agent', extra));
  await Promise.all([server.ready(), client.ready()]);
  return {
    client,
    server,
    close: async () => {
      const closed = [client, server].map((s) => (s.closed ? Promise.resolve() : once(s, 'close').then(() => undefined)));
      client.destroy();
      server.destroy();
      await Promise.all(closed);
    },
  };
}

/** Reads a stream to its end; rejects on error or a close without end. */
export function readAll(stream: Http2Stream | net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    stream.once('close', () => reject(new Error('stream closed without end')));
  });
}

/** Resolves on the next turn of the event loop (lets I/O callbacks run); not a timed wait. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// Raw HTTP/2, for peers that misbehave on purpose.

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const H2 = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, GOAWAY: 0x7, END_STREAM: 0x1, END_HEADERS: 0x4 } as const;

/** One HTTP/2 frame (RFC 9113 §4.1). */
export function h2Frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** A header block of "literal without indexing, new name" fields, plain strings (RFC 7541 §6.2.2). */
export function hpackLiterals(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.length > 126 || value.length > 126) throw new Error('keep raw header fields short');
    parts.push(Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value));
  }
  return Buffer.concat(parts);
}

/** A raw client's first frames: the preface, empty SETTINGS and the control stream's HEADERS (stream 1). */
export function rawSessionStart(): Buffer[] {
  return [H2_PREFACE, h2Frame(H2.SETTINGS, 0, 0), h2Frame(H2.HEADERS, H2.END_HEADERS, 1, hpackLiterals({ ':method': 'POST', ':scheme': 'http', ':path': CONTROL_PATH, ':authority': 'x' }))];
}

/** The raw client's hello, as DATA on the control stream. */
export function rawHello(): Buffer {
  return h2Frame(H2.DATA, 0, 1, encodeFrame(makeHello('agent', [], 'raw')));
}

/** A microtunnel open (CONNECT) on stream `id`; `endStream` also ends the stream's data. */
export function rawOpen(id: number, authority: string, tag: number, endStream = false): Buffer {
  const flags = H2.END_HEADERS | (endStream ? H2.END_STREAM : 0);
  return h2Frame(H2.HEADERS, flags, id, hpackLiterals({ ':method': 'CONNECT', ':authority': authority, 'zcc-tag': String(tag), 'zcc-proto': 'tcp' }));
}
