import { once } from 'node:events';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/log.js';
import { ControlChannel, makeHello } from '../../src/protocol/control-channel.js';
import type { ControlMessage, HelloMessage } from '../../src/protocol/control-messages.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { encodeFrame, FrameDecoder, MAX_CONTROL_FRAME } from '../../src/protocol/frame-codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { tcpPair, type SocketPair } from './helpers.js';

/** The far end of a control channel, played by hand over the raw socket. */
class RawPeer {
  private readonly decoder = new FrameDecoder('raw peer');
  private readonly queue: unknown[] = [];
  private readonly waiters: Array<(v: unknown) => void> = [];
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) {
        if (!f.ok) throw f.error;
        const waiter = this.waiters.shift();
        if (waiter) waiter(f.value);
        else this.queue.push(f.value);
      }
    });
    socket.on('error', () => undefined);
    this.closed = once(socket, 'close').then(() => undefined);
  }

  send(message: unknown): void {
    this.socket.write(encodeFrame(message));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next control message the channel sent us. */
  next(): Promise<Record<string, unknown>> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued as Record<string, unknown>);
    return new Promise((resolve) => this.waiters.push(resolve as (v: unknown) => void));
  }

  async expectError(code: string): Promise<Record<string, unknown>> {
    const m = await this.next();
    expect(m).toMatchObject({ type: 'error', code });
    return m;
  }
}

const peerHello = makeHello('edge', ['probe-v1'], 'raw peer');
const health: ControlMessage = { type: 'health', activeMicrotunnels: 1, bytesIn: 2, bytesOut: 3 };

let pair: SocketPair | undefined;
afterEach(() => {
  pair?.client.destroy();
  pair?.server.destroy();
  pair = undefined;
});

/** A ControlChannel on one end of a TCP connection and a RawPeer on the other. */
async function setup(opts: { greet?: boolean } = {}): Promise<{ channel: ControlChannel; peer: RawPeer; ownHello: HelloMessage }> {
  pair = await tcpPair();
  const ownHello = makeHello('agent', ['segments-v1'], 'under test');
  const channel = new ControlChannel(pair.server, ownHello, silentLogger, 'test control');
  const peer = new RawPeer(pair.client);
  // The channel speaks first, unprompted.
  expect(await peer.next()).toEqual(ownHello);
  if (opts.greet ?? true) {
    const greeted = once(channel, 'hello');
    peer.send(peerHello);
    expect((await greeted)[0]).toEqual(peerHello);
  }
  return { channel, peer, ownHello };
}

/** Sends `health` and resolves once the channel delivered it: proof the channel survived. */
async function stillAlive(channel: ControlChannel, peer: RawPeer): Promise<void> {
  const got = once(channel, 'message');
  peer.send(health);
  expect((await got)[0]).toEqual(health);
}

function violations(channel: ControlChannel): ProtocolError[] {
  const seen: ProtocolError[] = [];
  channel.on('violation', (e) => seen.push(e));
  return seen;
}

describe('ControlChannel ordering', () => {
  it('answers a message before hello with out-of-order and survives it', async () => {
    const { channel, peer } = await setup({ greet: false });
    const seen = violations(channel);
    const messages: ControlMessage[] = [];
    channel.on('message', (m) => messages.push(m));
    peer.send(health);
    const err = await peer.expectError('out-of-order');
    expect(err.message).toMatch(/health before hello/);
    expect(seen.map((e) => e.code)).toEqual(['out-of-order']);
    expect(messages).toEqual([]);
    expect(channel.hello).toBeNull();

    const greeted = once(channel, 'hello');
    peer.send(peerHello);
    await greeted;
    expect(channel.hello).toEqual(peerHello);
    await stillAlive(channel, peer);
  });

  it('answers a second hello with out-of-order and keeps the first', async () => {
    const { channel, peer } = await setup();
    const hellos: HelloMessage[] = [];
    channel.on('hello', (h) => hellos.push(h));
    peer.send({ ...peerHello, software: 'impostor' });
    const err = await peer.expectError('out-of-order');
    expect(err.message).toMatch(/second hello/);
    expect(hellos).toEqual([]);
    expect(channel.hello).toEqual(peerHello);
    await stillAlive(channel, peer);
  });

  it('treats a version mismatch as fatal: error sent, pending requests rejected, nothing more delivered', async () => {
    const { channel, peer } = await setup({ greet: false });
    const fatal = once(channel, 'fatal') as Promise<[ProtocolError]>;
    peer.send({ ...peerHello, version: PROTOCOL_VERSION + 1 });
    const [err] = await fatal;
    expect(err.code).toBe('version-mismatch');
    const sent = await peer.expectError('version-mismatch');
    expect(sent.message).toMatch(`v${PROTOCOL_VERSION + 1}`);
    expect(channel.hello).toBeNull();

    // Closed for good: no more deliveries, requests fail at once.
    const messages: ControlMessage[] = [];
    channel.on('message', (m) => messages.push(m));
    await expect(channel.request('probe', { proto: 'tcp', host: 'a.b', port: 1 })).rejects.toMatchObject({ code: 'closed' });
    peer.send(peerHello);
    peer.send(health);
    // The channel no longer writes either: the next thing we see is the socket closing.
    pair?.server.end();
    await peer.closed;
    expect(messages).toEqual([]);
  });

  it('delivers nothing that followed the fatal frame in the same chunk', async () => {
    // One chunk, exactly as given: a hand-made duplex instead of TCP, which may split it.
    const written: Buffer[] = [];
    const stream = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _enc, cb) => {
        written.push(chunk);
        cb();
      },
    });
    const channel = new ControlChannel(stream, makeHello('agent', [], 'x'), silentLogger, 'dup');
    const delivered: string[] = [];
    channel.on('hello', () => delivered.push('hello'));
    channel.on('message', (m) => delivered.push(m.type));
    channel.on('violation', (e) => delivered.push(`violation ${e.code}`));
    const fatal = once(channel, 'fatal') as Promise<[ProtocolError]>;
    stream.push(
      Buffer.concat([
        encodeFrame({ ...peerHello, version: PROTOCOL_VERSION + 1 }),
        encodeFrame(peerHello),
        encodeFrame(health),
        encodeFrame({ type: 'nonsense' }),
      ]),
    );
    expect((await fatal)[0].code).toBe('version-mismatch');
    stream.push(encodeFrame(health));
    await new Promise((resolve) => setImmediate(resolve));
    expect(delivered).toEqual([]);
    expect(channel.hello).toBeNull();
    // Our hello, then the one error report; nothing answered after the failure.
    const replies = new FrameDecoder('out').push(Buffer.concat(written)).map((f) => (f.ok ? (f.value as { type: string; code?: string }) : null));
    expect(replies.map((r) => r && [r.type, r.code])).toEqual([
      ['hello', undefined],
      ['error', 'version-mismatch'],
    ]);
  });

  it('rejects pending requests with the fatal error when the channel fails', async () => {
    const { channel, peer } = await setup();
    const pending = channel.request('reach', { host: 'app.demo.internal' });
    expect(await peer.next()).toMatchObject({ type: 'reach', id: 1, host: 'app.demo.internal' });
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_CONTROL_FRAME + 1, 0);
    peer.sendRaw(head);
    await expect(pending).rejects.toMatchObject({ code: 'frame-too-large' });
    await peer.expectError('frame-too-large');
  });
});

describe('ControlChannel per-message faults are answered and survived', () => {
  const invalid: Array<[string, unknown, RegExp]> = [
    ['an unknown type', { type: 'launch-missiles' }, /^bad-message: type: /],
    ['no type', { revision: 1 }, /^bad-message: type: /],
    ['a non-object', 42, /^bad-message: \(root\): /],
    ['null', null, /^bad-message: \(root\): /],
    ['an array', [health], /^bad-message: \(root\): /],
    ['a wrong field type', { ...health, bytesIn: 'lots' }, /^bad-message: bytesIn: /],
    ['a negative count', { ...health, activeMicrotunnels: -1 }, /^bad-message: activeMicrotunnels: /],
    ['an empty probe host', { type: 'probe', id: 1, proto: 'tcp', host: '', port: 80 }, /^bad-message: host: /],
    ['a request id of 0', { type: 'probe', id: 0, proto: 'tcp', host: 'a', port: 80 }, /^bad-message: id: /],
    ['a request id above 2^31', { type: 'reach', id: 2 ** 31 + 1, host: 'a' }, /^bad-message: id: /],
    [
      'a nested bad segment domain',
      { type: 'segments', revision: 3, segments: [{ id: 's', name: 'n', domains: ['ok.example', 'NOT OK'] }] },
      /^bad-message: segments\.0\.domains\.1: /,
    ],
    ['an over-long error message', { type: 'error', code: 'x', message: 'm'.repeat(1025) }, /^bad-message: message: /],
  ];

  it.each(invalid)('schema-invalid message (%s) → bad-message naming the path', async (_name, body, expected) => {
    const { channel, peer } = await setup();
    const seen = violations(channel);
    peer.send(body);
    const err = await peer.expectError('bad-message');
    expect(err.message).toMatch(expected);
    expect(seen.map((e) => e.code)).toEqual(['bad-message']);
    await stillAlive(channel, peer);
  });

  it('a bad JSON body → bad-json, and the next frame is read in sync', async () => {
    const { channel, peer } = await setup();
    const body = Buffer.from('{"type":"health",');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length, 0);
    const got = once(channel, 'message');
    peer.sendRaw(Buffer.concat([head, body, encodeFrame(health)]));
    await peer.expectError('bad-json');
    expect((await got)[0]).toEqual(health);
  });

  it('many faults in one chunk are each answered, in order', async () => {
    const { channel, peer } = await setup();
    const seen = violations(channel);
    peer.sendRaw(Buffer.concat([encodeFrame({ type: 'nope' }), encodeFrame(peerHello), encodeFrame({ type: 'probe-result', id: 9, ok: true })]));
    await peer.expectError('bad-message');
    await peer.expectError('out-of-order');
    await peer.expectError('unknown-request');
    expect(seen.map((e) => e.code)).toEqual(['bad-message', 'out-of-order', 'unknown-request']);
    await stillAlive(channel, peer);
  });

  it('forwards an error message from the peer as a message', async () => {
    const { channel, peer } = await setup();
    const got = once(channel, 'message');
    const report: ControlMessage = { type: 'error', code: 'bad-open', message: 'no', ref: 7 };
    peer.send(report);
    expect((await got)[0]).toEqual(report);
  });
});

describe('ControlChannel requests', () => {
  it('matches responses to requests by id, in any order', async () => {
    const { channel, peer } = await setup();
    const a = channel.request('probe', { proto: 'tcp', host: 'a.demo.internal', port: 443 });
    const b = channel.request('reach', { host: 'b.demo.internal' });
    const c = channel.request('probe', { proto: 'udp', host: 'c.demo.internal', port: 53 });
    const sent = [await peer.next(), await peer.next(), await peer.next()];
    expect(sent.map((m) => [m.type, m.id])).toEqual([
      ['probe', 1],
      ['reach', 2],
      ['probe', 3],
    ]);
    peer.send({ type: 'probe-result', id: 3, ok: false, reason: 'c' });
    peer.send({ type: 'reach-result', id: 2, ok: true });
    peer.send({ type: 'probe-result', id: 1, ok: true, rttMs: 4 });
    expect(await a).toEqual({ type: 'probe-result', id: 1, ok: true, rttMs: 4 });
    expect(await b).toEqual({ type: 'reach-result', id: 2, ok: true });
    expect(await c).toEqual({ type: 'probe-result', id: 3, ok: false, reason: 'c' });
  });

  it('answers a response with an unknown id with unknown-request', async () => {
    const { channel, peer } = await setup();
    const seen = violations(channel);
    peer.send({ type: 'reach-result', id: 77, ok: true });
    const err = await peer.expectError('unknown-request');
    expect(err.message).toMatch(/77/);
    expect(seen.map((e) => e.code)).toEqual(['unknown-request']);
    await stillAlive(channel, peer);
  });

  it('answers a response of the wrong type with unknown-request and keeps waiting for the right one', async () => {
    const { channel, peer } = await setup();
    const reach = channel.request('reach', { host: 'x.demo.internal' });
    const sent = await peer.next();
    peer.send({ type: 'probe-result', id: sent.id, ok: true });
    await peer.expectError('unknown-request');
    peer.send({ type: 'reach-result', id: sent.id, ok: false, reason: 'not-an-app' });
    expect(await reach).toMatchObject({ type: 'reach-result', ok: false, reason: 'not-an-app' });
  });

  it('rejects a request with timeout; a late response is then unknown-request', async () => {
    const { channel, peer } = await setup();
    const started = Date.now();
    const req = channel.request('probe', { proto: 'tcp', host: 'slow.demo.internal', port: 22 }, 50);
    const sent = await peer.next();
    await expect(req).rejects.toSatisfy((e) => e instanceof ProtocolError && e.code === 'timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    peer.send({ type: 'probe-result', id: sent.id, ok: true });
    await peer.expectError('unknown-request');
  });

  it('rejects every pending request with closed when the stream closes', async () => {
    const { channel, peer } = await setup();
    const reqs = [
      channel.request('probe', { proto: 'tcp', host: 'a', port: 1 }),
      channel.request('reach', { host: 'b' }),
      channel.request('reach', { host: 'c' }),
    ];
    for (let i = 0; i < reqs.length; i++) await peer.next();
    peer.socket.destroy();
    for (const r of reqs) await expect(r).rejects.toMatchObject({ code: 'closed' });
    await expect(channel.request('reach', { host: 'd' })).rejects.toMatchObject({ code: 'closed' });
  });

  it('rejects pending requests when the peer ends the stream cleanly', async () => {
    const { channel, peer } = await setup();
    const req = channel.request('reach', { host: 'b' });
    await peer.next();
    peer.socket.end();
    await expect(req).rejects.toMatchObject({ code: 'closed' });
  });

  it('treats an end in the middle of a frame as fatal truncation', async () => {
    const { channel, peer } = await setup();
    const fatal = once(channel, 'fatal') as Promise<[ProtocolError]>;
    const req = channel.request('reach', { host: 'b' });
    await peer.next();
    peer.sendRaw(encodeFrame(health).subarray(0, 9));
    peer.socket.end();
    const [err] = await fatal;
    expect(err.code).toBe('frame-truncated');
    await expect(req).rejects.toMatchObject({ code: 'frame-truncated' });
  });

  it('works end to end between two channels', async () => {
    pair = await tcpPair();
    const a = new ControlChannel(pair.client, makeHello('agent', [], 'a'), silentLogger, 'a');
    const b = new ControlChannel(pair.server, makeHello('edge', [], 'b'), silentLogger, 'b');
    b.on('message', (m) => {
      if (m.type === 'reach') b.send({ type: 'reach-result', id: m.id, ok: m.host.startsWith('ok'), reason: m.host });
    });
    await Promise.all([once(a, 'hello'), once(b, 'hello')]);
    const results = await Promise.all(['ok-1', 'no-2', 'ok-3'].map((host) => a.request('reach', { host })));
    expect(results.map((r) => [r.ok, r.reason])).toEqual([
      [true, 'ok-1'],
      [false, 'no-2'],
      [true, 'ok-3'],
    ]);
    expect(a.hello?.role).toBe('edge');
    expect(b.hello?.role).toBe('agent');
  });
});
