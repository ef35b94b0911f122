import { execFile } from 'node:child_process';
import { once } from 'node:events';
import type { Http2Stream, ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { makeHello } from '../../src/protocol/control-channel.js';
import type { ControlMessage } from '../../src/protocol/control-messages.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { MicrotunnelError, type MicrotunnelOpen } from '../../src/protocol/microtunnel-open.js';
import { resetMicrotunnel, resetReasonOf } from '../../src/protocol/microtunnel-reset.js';
import { ZTunnelSession, type IncomingMicrotunnel } from '../../src/protocol/session.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { closeServer, H2, h2Frame, listen, rawHello, rawOpen, rawSessionStart, readAll, sessionOptions, sessionPair, tcpPair, type SessionPair } from './helpers.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const health: ControlMessage = { type: 'health', activeMicrotunnels: 0, bytesIn: 1, bytesOut: 2 };

async function withPair(fn: (p: SessionPair) => Promise<void>, extra = {}): Promise<void> {
  const pair = await sessionPair(await tcpPair(), extra);
  try {
    await fn(pair);
  } finally {
    await pair.close();
  }
}

/** A stream's 'close' (events.once would reject on the 'error' a reset stream emits first). */
const streamClosed = (s: Http2Stream): Promise<void> => new Promise((resolve) => s.once('close', () => resolve()));

const closeOf = (s: ZTunnelSession): Promise<Error | null> => (s.closed ? Promise.resolve(null) : once(s, 'close').then(([e]) => e as Error | null));

describe('teardowns that made Node spin forever (child process, so a regression times out)', () => {
  it.each(['destroy-after-reset', 'closing-then-peer-reset', 'goaway-then-reset-control'])('%s', async (mode) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'protocol', 'fixtures', 'teardown-child.ts'), mode], {
      cwd: ROOT,
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    expect(stdout.trim()).toBe('ok');
  });
});

describe('microtunnel failures never escape as uncaught errors', () => {
  it('reports refusal and reset reasons; a reset outgoing stream needs no error listener of ours', async () => {
    await withPair(async ({ client, server }) => {
      server.on('microtunnel', (m) => {
        if (m.open.host === 'deny.apps.test') return m.reject('denied', 'policy');
        const stream = m.accept();
        stream.once('data', () => stream.close(0x106)); // unreachable
      });
      const denied = client.openMicrotunnel({ proto: 'tcp', host: 'deny.apps.test', port: 1 });
      await expect(denied.established).rejects.toSatisfy((e) => e instanceof MicrotunnelError && e.reason === 'denied');
      const reset = client.openMicrotunnel({ proto: 'tcp', host: 'ok.apps.test', port: 1 });
      await reset.established;
      // Before the fix the ERR_HTTP2_STREAM_ERROR of this reset was an uncaught exception.
      const closed = new Promise((resolve) => reset.stream.on('close', resolve));
      reset.stream.write('x');
      await closed;
      expect(resetReasonOf(reset.stream)).toBe('unreachable');
      const got = once(server, 'message');
      client.send(health);
      await got;
    });
  });

  it('a client reset is sent by the server (reset message), with its reason, to both ends', async () => {
    await withPair(async ({ client, server }) => {
      const accepted = new Promise<Http2Stream>((resolve) => server.once('microtunnel', (m) => resolve(m.accept())));
      const out = client.openMicrotunnel({ proto: 'tcp', host: 'ok.apps.test', port: 1 });
      await out.established;
      const inbound = await accepted;
      const messages: string[] = [];
      server.on('message', (m) => messages.push(m.type));
      const closedIn = streamClosed(inbound);
      const closedOut = streamClosed(out.stream);
      resetMicrotunnel(out.stream, 'idle-timeout');
      await Promise.all([closedIn, closedOut]);
      expect(resetReasonOf(inbound as ServerHttp2Stream)).toBe('idle-timeout');
      expect(resetReasonOf(out.stream)).toBe('idle-timeout');
      // A plain destroy() goes the same way, as peer-reset.
      const accepted2 = new Promise<Http2Stream>((resolve) => server.once('microtunnel', (m) => resolve(m.accept())));
      const out2 = client.openMicrotunnel({ proto: 'tcp', host: 'ok.apps.test', port: 1 });
      await out2.established;
      const inbound2 = await accepted2;
      const closedIn2 = streamClosed(inbound2);
      out2.stream.destroy();
      await closedIn2;
      expect(resetReasonOf(inbound2 as ServerHttp2Stream)).toBe('peer-reset');
      // The request is the session's business, not the application's.
      expect(messages).toEqual([]);
    });
  });

  it('resets the stream itself when the server does not act on the request in time', async () => {
    await withPair(
      async ({ client, server }) => {
        // A server that predates the message: it never resets.
        (server as unknown as { onResetRequest: () => void }).onResetRequest = () => undefined;
        const accepted = new Promise<Http2Stream>((resolve) => server.once('microtunnel', (m) => resolve(m.accept())));
        const out = client.openMicrotunnel({ proto: 'tcp', host: 'ok.apps.test', port: 1 });
        await out.established;
        const inbound = await accepted;
        const closedIn = streamClosed(inbound);
        const started = Date.now();
        resetMicrotunnel(out.stream, 'denied');
        await closedIn;
        expect(Date.now() - started).toBeGreaterThanOrEqual(150);
        expect(resetReasonOf(inbound as ServerHttp2Stream)).toBe('denied');
      },
      { resetThroughPeerMs: 200 },
    );
  });

  it('sends the RST_STREAM itself, at once, to a server that does not announce reset requests', async () => {
    const sockets = await tcpPair();
    const server = ZTunnelSession.server(sockets.server as TLSSocket, { ...sessionOptions('server', 'edge'), hello: makeHello('edge', ['microtunnel-tcp'], 'older edge') });
    const client = ZTunnelSession.client(sockets.client as TLSSocket, sessionOptions('client', 'agent'));
    try {
      await Promise.all([server.ready(), client.ready()]);
      const accepted = new Promise<Http2Stream>((resolve) => server.once('microtunnel', (m) => resolve(m.accept())));
      const out = client.openMicrotunnel({ proto: 'tcp', host: 'ok.apps.test', port: 1 });
      await out.established;
      const inbound = await accepted;
      // Were the client to ask anyway, nothing would reset the stream for 5 s.
      let asked = 0;
      (server as unknown as { onResetRequest: () => void }).onResetRequest = () => asked++;
      const closedIn = streamClosed(inbound);
      resetMicrotunnel(out.stream, 'denied');
      await closedIn;
      expect(resetReasonOf(inbound as ServerHttp2Stream)).toBe('denied');
      expect(asked).toBe(0);
    } finally {
      client.destroy();
      server.destroy();
    }
  });

  it('accept() after the opener already reset the stream returns it closed instead of throwing', async () => {
    await withPair(async ({ client, server }) => {
      const serverStream = once(server.h2, 'stream') as Promise<[ServerHttp2Stream]>;
      const offered = once(server, 'microtunnel') as Promise<[IncomingMicrotunnel]>;
      const m = client.openMicrotunnel({ proto: 'tcp', host: 'slow.apps.test', port: 22 });
      const [[incoming], [raw]] = await Promise.all([offered, serverStream]);
      // The opener gives up while the far end is still deciding (e.g. connecting upstream).
      const rawClosed = once(raw, 'close');
      m.stream.close(8); // CANCEL
      await rawClosed;
      let stream: Http2Stream | undefined;
      expect(() => (stream = incoming.accept())).not.toThrow();
      // A consumer attaching its listeners after accept() still learns the stream is gone.
      await once(stream as Http2Stream, 'close');
      expect(stream?.rstCode).toBe(8);
      expect(resetReasonOf(stream as Http2Stream)).toBe('peer-reset');
      expect(server.openMicrotunnels).toBe(0);
      expect(() => incoming.accept()).toThrow(/already answered/);
      expect(server.closed).toBe(false);
    });
  });

  it('openMicrotunnel on a closing session throws MicrotunnelError, not a bare HTTP/2 error', async () => {
    await withPair(async ({ client }) => {
      client.close();
      expect(() => client.openMicrotunnel({ proto: 'tcp', host: 'a.apps.test', port: 1 })).toThrow(MicrotunnelError);
    });
  });
});

describe('graceful close', () => {
  it('lets the microtunnels in flight finish, then both sides close cleanly', async () => {
    await withPair(async ({ client, server }) => {
      const accepted: Http2Stream[] = [];
      server.on('microtunnel', (m) => accepted.push(m.accept()));
      const m = client.openMicrotunnel({ proto: 'tcp', host: 'bulk.apps.test', port: 80 });
      await m.established;
      const clientClosed = closeOf(client);
      const serverClosed = closeOf(server);
      client.close();
      // Still carries data both ways after close() ...
      const down = readAll(m.stream);
      const up = readAll(accepted[0] as Http2Stream);
      const payload = Buffer.alloc(3 << 20, 7);
      m.stream.end(payload);
      (accepted[0] as Http2Stream).end('bye');
      const got = await up;
      expect(got.length).toBe(payload.length);
      expect(got.equals(payload)).toBe(true);
      expect((await down).toString()).toBe('bye');
      // ... then finishes: before the fix the control stream kept both sessions open forever.
      expect(await clientClosed).toBeNull();
      expect(await serverClosed).toBeNull();
    });
  });

  it('the server side closing (GOAWAY to the client) ends both sessions too', async () => {
    await withPair(async ({ client, server }) => {
      const closed = Promise.all([closeOf(client), closeOf(server)]);
      server.close();
      expect(await closed).toEqual([null, null]);
    });
  });

  it('a closing session whose peer goes silent is torn down by the drain watchdog', async () => {
    let accepted!: (s: ZTunnelSession) => void;
    const first = new Promise<ZTunnelSession>((resolve) => (accepted = resolve));
    const listener = net.createServer((s) => {
      s.on('error', () => undefined);
      const session = ZTunnelSession.server(s as TLSSocket, sessionOptions('server', 'edge', { keepaliveMs: 100, keepaliveTimeoutMs: 100 }));
      session.on('microtunnel', (m) => m.accept());
      accepted(session);
    });
    const port = await listen(listener);
    try {
      const raw = net.connect(port, '127.0.0.1');
      raw.on('error', () => undefined);
      await once(raw, 'connect');
      raw.resume();
      // Hello, a microtunnel left open, then GOAWAY: the server drains, and nothing ever comes.
      raw.write(
        Buffer.concat([
          ...rawSessionStart(),
          rawHello(),
          rawOpen(3, 'a.apps.test:1', 9),
          h2Frame(H2.GOAWAY, 0, 0, Buffer.alloc(8)),
        ]),
      );
      const err = await closeOf(await first);
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code).toBe('timeout');
      expect(err?.message).toMatch(/no progress/);
      raw.destroy();
    } finally {
      await closeServer(listener);
    }
  });
});

describe('control stream loss', () => {
  it('a peer resetting the control stream with NO_ERROR tears the session down', async () => {
    const { client: c, server: s } = await tcpPair();
    const server = ZTunnelSession.server(s as TLSSocket, sessionOptions('server', 'edge'));
    const controlOnServer = once(server.h2, 'stream') as Promise<[ServerHttp2Stream]>;
    const client = ZTunnelSession.client(c as TLSSocket, sessionOptions('client', 'agent'));
    await Promise.all([client.ready(), server.ready()]);
    const closed = Promise.all([closeOf(client), closeOf(server)]);
    // RST_STREAM(NO_ERROR) only ends the client's readable side; before the fix the client
    // waited for a 'close' that never came and lived on without a control channel.
    (await controlOnServer)[0].close(0);
    const [clientErr, serverErr] = await closed;
    expect(clientErr).toBeInstanceOf(ProtocolError);
    expect((clientErr as ProtocolError).code).toBe('closed');
    expect((serverErr as ProtocolError).code).toBe('closed');
  });

  it('a version mismatch in the peer hello closes the session with version-mismatch', async () => {
    const { client: c, server: s } = await tcpPair();
    const server = ZTunnelSession.server(s as TLSSocket, sessionOptions('server', 'edge'));
    const client = ZTunnelSession.client(c as TLSSocket, { ...sessionOptions('client', 'agent'), hello: { ...makeHello('agent', [], 'x'), version: PROTOCOL_VERSION + 1 } });
    const [serverErr] = await Promise.all([closeOf(server), closeOf(client)]);
    expect((serverErr as ProtocolError).code).toBe('version-mismatch');
    await expect(server.ready()).rejects.toMatchObject({ code: 'version-mismatch' });
  });
});

describe('bad opens before hello', () => {
  it('refuses a microtunnel that arrives before the hello, and only that one', async () => {
    const { client: c, server: s } = await tcpPair();
    const server = ZTunnelSession.server(s as TLSSocket, sessionOptions('server', 'edge'));
    const opened = new Promise<MicrotunnelOpen>((resolve) =>
      server.on('microtunnel', (m) => {
        resolve(m.open);
        m.accept().end();
      }),
    );
    const refused = new Promise<ServerHttp2Stream>((resolve) => server.h2.on('stream', (st) => st.id === 3 && resolve(st)));
    c.on('data', () => undefined);
    c.write(
      Buffer.concat([
        ...rawSessionStart(),
        // The microtunnel overtakes the hello.
        rawOpen(3, 'a.apps.test:1', 1, true),
        rawHello(),
        rawOpen(5, 'b.apps.test:2', 2, true),
      ]),
    );
    await server.ready();
    const early = await refused;
    expect(early.sentHeaders).toMatchObject({ ':status': 400, 'zcc-reason': 'bad-open' });
    expect(await opened).toEqual({ tag: 2, proto: 'tcp', host: 'b.apps.test', port: 2 });
    expect(server.closed).toBe(false);
    server.destroy();
    c.destroy();
  });
});
