import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { createLogger, type Logger } from '../../src/common/log.js';
import type { ProxyOptions } from '../../src/agent/intercept/proxy-core.js';
import { DialError, DIAL_FAILURES, type DialFailure, type DialTarget, type Dialer } from '../../src/agent/intercept/dialer.js';

export const APP_PAGE = 'hello from app.test.internal\n';

export interface Backend {
  port: number;
  close(): Promise<void>;
}

function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** Starts a TCP server on 127.0.0.1 whose per-connection behaviour is `onConn`. */
export async function startTcp(onConn: (s: net.Socket) => void): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onConn(s);
  });
  const port = await listen(server);
  return { port, close: () => closeServer(server, sockets) };
}

/** Echo that honours half-close: the client's FIN ends our side only after the echo. */
export const startEcho = (): Promise<Backend> => startTcp((s) => s.pipe(s));

export async function startHttpApp(): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(APP_PAGE);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return { port, close: () => closeServer(server, sockets) };
}

/**
 * A dialer backed by real TCP connections. `routes` maps names (or IP literals) to local
 * ports; `<reason>.fail.test.internal` rejects with that DialError reason; `hang.test.internal`
 * never connects (until aborted); anything else is 'not-an-app'.
 */
export class TestDialer {
  readonly dialed: net.Socket[] = [];
  readonly targets: DialTarget[] = [];
  readonly routes = new Map<string, number>();
  /** When set, dials wait for this promise first (to let clients send early data). */
  gate: Promise<void> | undefined;

  readonly dial: Dialer = async (target, signal) => {
    this.targets.push(target);
    if (this.gate) await this.gate;
    const failure = /^([a-z-]+)\.fail\.test\.internal$/.exec(target.host)?.[1];
    if (failure && (DIAL_FAILURES as readonly string[]).includes(failure)) throw new DialError(failure as DialFailure);
    if (target.host === 'hang.test.internal') {
      return new Promise<Duplex>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
    }
    const port = this.routes.get(target.host);
    if (port === undefined) throw new DialError('not-an-app', `${target.host} is not a private app`);
    const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', (err) => reject(new DialError('unreachable', err.message, { cause: err })));
    });
    this.dialed.push(sock);
    return sock;
  };
}

export interface LogLine {
  msg?: string;
  reason?: string;
  host?: string;
  [k: string]: unknown;
}

export function memoryLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger({ name: 'test', level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } });
  return { log, lines };
}

/** Polls `cond` until it holds or the deadline passes (no fixed sleeps). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What a proxy front's tests work with; the fields are set by the hooks useProxyTestBed registers. */
export interface ProxyTestBed<P> {
  echo: Backend;
  app: Backend;
  dialer: TestDialer;
  proxy: P;
  port: number;
  lines: LogLine[];
}

/**
 * The fixture of a proxy front's test file: an echo server and an HTTP app for the whole file,
 * and for each test a fresh dialer (app.test.internal and echo.test.internal routed to them,
 * plus `echoNames`), front and in-memory log. Call it at the top level of the file.
 */
export function useProxyTestBed<P extends { start(addr: { host: string; port: number }): Promise<{ port: number }>; close(): Promise<void> }>(
  make: (opts: ProxyOptions) => P,
  echoNames: readonly string[],
): ProxyTestBed<P> {
  const bed = {} as ProxyTestBed<P>;
  beforeAll(async () => {
    [bed.echo, bed.app] = await Promise.all([startEcho(), startHttpApp()]);
  });
  afterAll(async () => {
    await Promise.all([bed.echo.close(), bed.app.close()]);
  });
  beforeEach(async () => {
    bed.dialer = new TestDialer();
    bed.dialer.routes.set('app.test.internal', bed.app.port);
    for (const name of ['echo.test.internal', ...echoNames]) bed.dialer.routes.set(name, bed.echo.port);
    const m = memoryLogger();
    bed.lines = m.lines;
    bed.proxy = make({ dialer: bed.dialer.dial, log: m.log, handshakeTimeoutMs: 2_000, dialTimeoutMs: 300 });
    bed.port = (await bed.proxy.start({ host: '127.0.0.1', port: 0 })).port;
  });
  afterEach(async () => {
    await bed.proxy.close();
  });
  return bed;
}

export * from './clients.js';
