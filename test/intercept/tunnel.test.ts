import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HttpConnectServer } from '../../src/agent/intercept/http-connect.js';
import type { ProxyCounters, ProxyOptions } from '../../src/agent/intercept/proxy-core.js';
import { Socks5Server } from '../../src/agent/intercept/socks5.js';
import { type Backend, type LogLine, TestDialer, memoryLogger, startEcho, startTcp, viaHttpConnect, viaSocks, waitFor } from './helpers.js';

interface Front {
  start(addr: { host: string; port: number }): Promise<net.AddressInfo>;
  close(): Promise<void>;
  readonly counters: ProxyCounters;
}

const fronts = [
  { name: 'socks5', make: (o: ProxyOptions): Front => new Socks5Server(o), open: viaSocks, ok: 0 },
  { name: 'http-connect', make: (o: ProxyOptions): Front => new HttpConnectServer(o), open: viaHttpConnect, ok: 200 },
];

let echo: Backend;
let banner: Backend;
let resetter: Backend;
/** What the banner backend received after it had already sent its FIN. */
let bannerReceived: Promise<string>;
let gotBannerData: (s: string) => void = () => undefined;

beforeAll(async () => {
  echo = await startEcho();
  // Sends its banner and FIN straight away, then keeps reading: exercises remote-first half-close.
  banner = await startTcp((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => gotBannerData(Buffer.concat(chunks).toString()));
    s.end('banner\n');
  });
  // Answers the first byte with an RST, like a server process that crashed mid-request.
  resetter = await startTcp((s) => s.once('data', () => s.resetAndDestroy()));
});
afterAll(async () => {
  await Promise.all([echo.close(), banner.close(), resetter.close()]);
});

describe.each(fronts)('$name tunnel semantics', ({ make, open, ok }) => {
  let dialer: TestDialer;
  let proxy: Front;
  let port: number;
  let lines: LogLine[];

  beforeEach(async () => {
    dialer = new TestDialer();
    dialer.routes.set('echo.test.internal', echo.port);
    dialer.routes.set('banner.test.internal', banner.port);
    dialer.routes.set('reset.test.internal', resetter.port);
    bannerReceived = new Promise((resolve) => (gotBannerData = resolve));
    const m = memoryLogger();
    lines = m.lines;
    proxy = make({ dialer: dialer.dial, log: m.log });
    port = (await proxy.start({ host: '127.0.0.1', port: 0 })).port;
  });
  afterEach(async () => {
    await proxy.close();
  });

  it('client FIN: the echo still comes back after the client shut its write side', async () => {
    const { sock, reader, code } = await open(port, 'echo.test.internal', 7);
    expect(code).toBe(ok);
    sock.write('hello ');
    sock.end('world');
    expect((await reader.end()).toString()).toBe('hello world');
    await waitFor(() => proxy.counters.bytesUp === 11 && proxy.counters.bytesDown === 11, 'byte counters');
    expect(lines.some((l) => l.msg === 'splice closed' && l.outcome === 'closed')).toBe(true);
  });

  it('remote FIN: the client sees the end of the stream and can keep sending', async () => {
    const { sock, reader } = await open(port, 'banner.test.internal', 21);
    expect((await reader.end()).toString()).toBe('banner\n');
    sock.end('still talking');
    expect(await bannerReceived).toBe('still talking');
  });

  it('remote stream destroyed with an error mid-stream: the client gets ECONNRESET, not a FIN', async () => {
    const { sock, reader } = await open(port, 'echo.test.internal', 7);
    sock.write('part one');
    expect((await reader.read(8)).toString()).toBe('part one');
    dialer.dialed[0]?.destroy(new Error('microtunnel torn down'));
    await expect(reader.end()).rejects.toMatchObject({ code: 'ECONNRESET' });
    await waitFor(() => lines.some((l) => l.outcome === 'remote-reset'), 'remote-reset log');
  });

  it('backend RST: the reset travels to the client', async () => {
    const { sock, reader } = await open(port, 'reset.test.internal', 80);
    sock.write('crash please');
    await expect(reader.end()).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('client RST: the remote stream is destroyed with an error', async () => {
    const { sock, reader } = await open(port, 'echo.test.internal', 7);
    sock.write('x');
    await reader.read(1);
    sock.resetAndDestroy();
    await waitFor(() => dialer.dialed[0]?.destroyed === true, 'remote destroyed');
    expect(dialer.dialed[0]?.errored).toBeInstanceOf(Error);
    await waitFor(() => proxy.counters.active === 0, 'connection closed');
  });

  it('moves 16 MiB both ways intact under backpressure', async () => {
    const { sock, reader } = await open(port, 'echo.test.internal', 7);
    const data = randomBytes(16 * 1024 * 1024);
    const want = createHash('sha256').update(data).digest('hex');
    const received = (async () => createHash('sha256').update(await reader.end(30_000)).digest('hex'))();
    for (let off = 0; off < data.length; off += 256 * 1024) {
      if (!sock.write(data.subarray(off, off + 256 * 1024))) await new Promise((r) => sock.once('drain', r));
    }
    sock.end();
    expect(await received).toBe(want);
    await waitFor(() => proxy.counters.bytesDown === data.length, 'byte counters');
  });
});
