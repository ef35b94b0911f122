import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Socks5Server, SocksReply, socksReplyFor } from '../../src/agent/intercept/socks5.js';
import { DIAL_FAILURES } from '../../src/agent/intercept/dialer.js';
import { APP_PAGE, Reader, connect, curl, socksGreeting, socksRequest, useProxyTestBed, viaSocks, waitFor } from './helpers.js';

const bed = useProxyTestBed((o) => new Socks5Server(o), ['10.1.2.3', 'fd00::1']);

/** Sends raw bytes, half-closes, and collects whatever the server answers before closing. */
async function exchangeRaw(bytes: Uint8Array): Promise<Buffer> {
  const sock = await connect(bed.port);
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => undefined); // an RST from the server is an acceptable way to refuse
  sock.end(Buffer.from(bytes));
  await closed;
  return Buffer.concat(chunks);
}

describe('Socks5Server with curl', () => {
  it('fetches a private app by name (remote resolution)', async () => {
    const r = await curl(['--socks5-hostname', `127.0.0.1:${bed.port}`, 'http://app.test.internal/']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(APP_PAGE);
    expect(bed.dialer.targets).toEqual([{ host: 'app.test.internal', port: 80 }]);
    await waitFor(() => bed.proxy.counters.bytesDown > 0 && bed.proxy.counters.active === 0, 'splice to finish');
    expect(bed.proxy.counters.accepted).toBe(1);
    expect(bed.proxy.counters.established).toBe(1);
  });

  it('refuses an unknown name: curl exits 97 and the reason is logged', async () => {
    const r = await curl(['--socks5-hostname', `127.0.0.1:${bed.port}`, 'http://nope.test.internal/']);
    expect(r.code).toBe(97);
    expect(bed.proxy.counters.failed['not-an-app']).toBe(1);
    const line = bed.lines.find((l) => l.msg === 'connection failed');
    expect(line).toMatchObject({ reason: 'not-an-app', host: 'nope.test.internal', port: 80 });
  });
});

describe('Socks5Server replies', () => {
  it.each(DIAL_FAILURES.map((r) => [r, socksReplyFor(r)] as const))('maps %s to reply 0x0%d', async (reason, code) => {
    const { sock, reader } = await viaSocks(bed.port, `${reason}.fail.test.internal`, 443).then((c) => {
      expect(c.code).toBe(code);
      return c;
    });
    await reader.end();
    sock.destroy();
    expect(bed.proxy.counters.failed[reason]).toBe(1);
    expect(bed.lines.some((l) => l.reason === reason)).toBe(true);
  });

  it('maps a dialer that never answers to TTL expired (0x06) after the dial deadline', async () => {
    const { code } = await viaSocks(bed.port, 'hang.test.internal', 443);
    expect(code).toBe(SocksReply.ttlExpired);
    expect(bed.proxy.counters.failed.timeout).toBe(1);
  });

  it('passes IPv4 and IPv6 literals to the dialer as host strings', async () => {
    const v4 = await viaSocks(bed.port, '10.1.2.3', 7);
    expect(v4.code).toBe(0);
    v4.sock.destroy();
    const sock = await connect(bed.port);
    const reader = new Reader(sock);
    const v6 = Buffer.from([5, 1, 0, 4, 0xfd, 0, ...Array<number>(13).fill(0), 1, 0, 7]);
    sock.write(Buffer.concat([socksGreeting(), v6]));
    expect([...(await reader.read(12))].slice(0, 4)).toEqual([5, 0, 5, 0]);
    sock.end('v6 ok');
    expect((await reader.end()).toString()).toBe('v6 ok');
    expect(bed.dialer.targets).toEqual([
      { host: '10.1.2.3', port: 7 },
      { host: 'fd00::1', port: 7 },
    ]);
  });

  it('refuses clients that only offer authentication methods with 0xFF', async () => {
    expect([...(await exchangeRaw(Buffer.from([5, 2, 1, 2])))]).toEqual([5, 0xff]);
  });

  it('answers BIND/UDP ASSOCIATE with 0x07 and unknown address types with 0x08', async () => {
    const bind = await exchangeRaw(Buffer.concat([socksGreeting(), Buffer.from([5, 2, 0, 1, 1, 2, 3, 4, 0, 80])]));
    expect(bind[3]).toBe(SocksReply.commandNotSupported);
    const udp = await exchangeRaw(Buffer.concat([socksGreeting(), Buffer.from([5, 3, 0, 1, 1, 2, 3, 4, 0, 80])]));
    expect(udp[3]).toBe(SocksReply.commandNotSupported);
    const atyp = await exchangeRaw(Buffer.concat([socksGreeting(), Buffer.from([5, 1, 0, 9, 1, 2, 3, 4, 0, 80])]));
    expect(atyp[3]).toBe(SocksReply.addressTypeNotSupported);
  });

  it('answers malformed and truncated handshakes with a failure and keeps serving', async () => {
    expect([...(await exchangeRaw(Buffer.from('GET / HTTP/1.1\r\n\r\n')))]).toEqual([5, 0xff]);
    expect([...(await exchangeRaw(Buffer.from([5, 3, 0])))]).toEqual([5, 0xff]); // truncated methods
    const truncated = await exchangeRaw(Buffer.concat([socksGreeting(), Buffer.from([5, 1, 0, 3, 20, 0x61])]));
    expect([...truncated.subarray(0, 4)]).toEqual([5, 0, 5, SocksReply.generalFailure]);
    const badName = await exchangeRaw(Buffer.concat([socksGreeting(), socksRequest('bad name\u0000', 80)]));
    expect(badName[3]).toBe(SocksReply.generalFailure);
    expect(bed.proxy.counters.failed['bad-request']).toBe(4);
    const ok = await viaSocks(bed.port, 'echo.test.internal', 7);
    expect(ok.code).toBe(0);
    ok.sock.destroy();
  });

  it('closes clients that stay silent past the handshake timeout', async () => {
    await bed.proxy.close();
    bed.proxy = new Socks5Server({ dialer: bed.dialer.dial, handshakeTimeoutMs: 150 });
    bed.port = (await bed.proxy.start({ host: '127.0.0.1', port: 0 })).port;
    const sock = await connect(bed.port);
    const reader = new Reader(sock);
    sock.write(Buffer.from([5])); // a started but never finished greeting
    await reader.end(); // our side is half-open, so the server's close shows up as FIN
    sock.destroy();
    expect(bed.proxy.counters.failed['handshake-timeout']).toBe(1);
    await waitFor(() => bed.proxy.counters.active === 0, 'server side to close');
  });
});

describe('Socks5Server early data', () => {
  it('keeps bytes pipelined with the greeting and request, in order', async () => {
    const sock = await connect(bed.port);
    const reader = new Reader(sock);
    sock.write(Buffer.concat([socksGreeting(), socksRequest('echo.test.internal', 7), Buffer.from('early|')]));
    expect([...(await reader.read(12))].slice(0, 4)).toEqual([5, 0, 5, 0]);
    sock.end('late');
    expect((await reader.end()).toString()).toBe('early|late');
  });

  it('honours a client FIN sent together with the request, before any reply', async () => {
    const sock = await connect(bed.port);
    const reader = new Reader(sock);
    sock.end(Buffer.concat([socksGreeting(), socksRequest('echo.test.internal', 7), Buffer.from('fire and forget')]));
    expect([...(await reader.read(12))].slice(0, 4)).toEqual([5, 0, 5, 0]);
    expect((await reader.end()).toString()).toBe('fire and forget');
  });

  it('keeps bytes sent while the dial is still in progress', async () => {
    let open: () => void = () => undefined;
    bed.dialer.gate = new Promise<void>((resolve) => (open = resolve));
    const sock = await connect(bed.port);
    const reader = new Reader(sock);
    sock.write(socksGreeting());
    await reader.read(2);
    sock.write(Buffer.concat([socksRequest('echo.test.internal', 7), Buffer.from('one|')]));
    await waitFor(() => bed.dialer.targets.length === 1, 'dial to start');
    await new Promise<void>((resolve) => sock.write('two|', () => resolve()));
    sock.end('three');
    open();
    expect((await reader.read(10))[1]).toBe(0);
    expect((await reader.end()).toString()).toBe('one|two|three');
  });
});

describe('Socks5Server robustness', () => {
  it('survives arbitrary input and still serves a good client (property)', async () => {
    const greeting = fc.uint8Array({ maxLength: 300 });
    const afterValidGreeting = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 300 }))
      .map(([cmdOrVer, atyp, tail]) => Buffer.concat([socksGreeting(), Buffer.from([5, cmdOrVer, 0, atyp]), tail]));
    await fc.assert(
      fc.asyncProperty(fc.oneof(greeting, afterValidGreeting), async (bytes) => {
        const answer = await exchangeRaw(bytes);
        // Whatever we got back must be SOCKS5 and must never claim success for a request.
        if (answer.length > 0) expect(answer[0]).toBe(5);
        if (answer.length >= 4) expect(answer[3]).not.toBe(SocksReply.succeeded);
      }),
      { numRuns: 150 },
    );
    const ok = await viaSocks(bed.port, 'echo.test.internal', 7);
    expect(ok.code).toBe(0);
    ok.sock.end('still alive');
    expect((await ok.reader.end()).toString()).toBe('still alive');
    await waitFor(() => bed.proxy.counters.active === 0, 'all connections to close');
  });

  it('close() resets live tunnels and destroys their remote streams', async () => {
    const { sock, reader, code } = await viaSocks(bed.port, 'echo.test.internal', 7);
    expect(code).toBe(0);
    sock.write('ping');
    expect((await reader.read(4)).toString()).toBe('ping');
    await bed.proxy.close();
    await expect(reader.end()).rejects.toMatchObject({ code: 'ECONNRESET' });
    await waitFor(() => bed.dialer.dialed[0]?.destroyed === true, 'remote stream to be destroyed');
    expect(bed.proxy.counters.active).toBe(0);
  });
});
