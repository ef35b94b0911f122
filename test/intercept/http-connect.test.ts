import { describe, expect, it } from 'vitest';
import { HttpConnectServer, httpStatusFor, parseAuthority } from '../../src/agent/intercept/http-connect.js';
import { DIAL_FAILURES } from '../../src/agent/intercept/dialer.js';
import { APP_PAGE, Reader, connect, curl, useProxyTestBed, viaHttpConnect, waitFor } from './helpers.js';

const bed = useProxyTestBed((o) => new HttpConnectServer(o), ['fd00::1']);

/** Sends a raw request and returns everything the proxy answers until it closes. */
async function rawExchange(request: string): Promise<string> {
  const sock = await connect(bed.port);
  const reader = new Reader(sock);
  sock.write(request);
  const answer = await reader.end();
  sock.end();
  return answer.toString('latin1');
}

describe('HttpConnectServer with curl', () => {
  it('tunnels curl --proxytunnel to the app by name', async () => {
    const r = await curl(['-p', '-x', `http://127.0.0.1:${bed.port}`, 'http://app.test.internal/']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(APP_PAGE);
    expect(bed.dialer.targets).toEqual([{ host: 'app.test.internal', port: 80 }]);
  });

  it('answers an unknown name with 403 and logs the reason', async () => {
    const r = await curl(['-p', '-x', `http://127.0.0.1:${bed.port}`, '-w', '%{http_connect}', 'http://nope.test.internal/']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('403');
    expect(bed.proxy.counters.failed['not-an-app']).toBe(1);
    expect(bed.lines.find((l) => l.msg === 'connection failed')).toMatchObject({ reason: 'not-an-app', host: 'nope.test.internal' });
  });

  it('refuses plain (non-CONNECT) proxying with 405', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${bed.port}`, '-w', '%{http_code}', '-o', '/dev/null', 'http://app.test.internal/']);
    expect(r.stdout).toBe('405');
    expect(bed.dialer.targets).toEqual([]);
  });
});

describe('HttpConnectServer responses', () => {
  it.each(DIAL_FAILURES.map((r) => [r, httpStatusFor(r)] as const))('maps %s to %d with X-Zcc-Reason', async (reason, status) => {
    const { sock, code, headers } = await viaHttpConnect(bed.port, `${reason}.fail.test.internal`, 443);
    sock.destroy();
    expect(code).toBe(status);
    expect(headers['x-zcc-reason']).toBe(reason);
    expect(bed.proxy.counters.failed[reason]).toBe(1);
  });

  it('maps a dialer that never answers to 504 after the dial deadline', async () => {
    const { sock, code } = await viaHttpConnect(bed.port, 'hang.test.internal', 443);
    sock.destroy();
    expect(code).toBe(504);
  });

  it('tunnels to an IPv6 literal target', async () => {
    const { sock, reader, code } = await viaHttpConnect(bed.port, '[fd00::1]', 7);
    expect(code).toBe(200);
    sock.end('six');
    expect((await reader.end()).toString()).toBe('six');
    expect(bed.dialer.targets).toEqual([{ host: 'fd00::1', port: 7 }]);
  });

  it('forwards bytes sent right behind the CONNECT headers (the parser head)', async () => {
    const sock = await connect(bed.port);
    const reader = new Reader(sock);
    sock.write('CONNECT echo.test.internal:7 HTTP/1.1\r\nHost: echo.test.internal:7\r\n\r\nearly|');
    const established = 'HTTP/1.1 200 Connection Established\r\n\r\n';
    expect((await reader.read(established.length)).toString()).toBe(established);
    sock.end('late');
    expect((await reader.end()).toString()).toBe('early|late');
  });

  it('answers GET, bad targets and garbage with errors and keeps serving', async () => {
    expect(await rawExchange('GET http://app.test.internal/ HTTP/1.1\r\nHost: app.test.internal\r\n\r\n')).toMatch(/^HTTP\/1\.1 405 /);
    expect(await rawExchange('CONNECT app.test.internal HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await rawExchange('CONNECT user@app.test.internal:80 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await rawExchange('\u0005\u0001\u0000garbage\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    const huge = `CONNECT echo.test.internal:7 HTTP/1.1\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`;
    expect(await rawExchange(huge)).toMatch(/^HTTP\/1\.1 431 /);
    expect(bed.proxy.counters.failed['bad-request']).toBe(5);
    const { sock, code } = await viaHttpConnect(bed.port, 'echo.test.internal', 7);
    expect(code).toBe(200);
    sock.destroy();
  });

  it('closes clients that never finish their request headers', async () => {
    await bed.proxy.close();
    bed.proxy = new HttpConnectServer({ dialer: bed.dialer.dial, handshakeTimeoutMs: 150 });
    bed.port = (await bed.proxy.start({ host: '127.0.0.1', port: 0 })).port;
    const sock = await connect(bed.port);
    const reader = new Reader(sock);
    sock.write('CONNECT echo.test.internal:7 HTTP/1.1\r\n');
    expect((await reader.end()).length).toBe(0); // our side is half-open: the close shows as FIN
    sock.destroy();
    expect(bed.proxy.counters.failed['handshake-timeout']).toBe(1);
    await waitFor(() => bed.proxy.counters.active === 0, 'server side to close');
  });
});

describe('parseAuthority', () => {
  it.each([
    ['app.corp.example:443', { host: 'app.corp.example', port: 443 }],
    ['App.Corp.Example.:8443', { host: 'app.corp.example', port: 8443 }],
    ['10.0.0.1:22', { host: '10.0.0.1', port: 22 }],
    ['[2001:DB8::1]:443', { host: '2001:db8::1', port: 443 }],
  ])('accepts %s', (input, want) => {
    expect(parseAuthority(input)).toEqual(want);
  });

  it.each(['app', 'app:0', 'app:65536', 'app:-1', '[zz::1]:80', 'a@b:80', 'http://a:80', ':80', 'a b:80'])('rejects %s', (input) => {
    expect(parseAuthority(input)).toBeUndefined();
  });
});
