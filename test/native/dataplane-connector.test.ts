// The native data plane's connector role against a scripted edge (a real TLS 1.3 server and a
// Node HTTP/2 client over it), for what the reference cloud never sends: malformed opens, a
// second control stream, duplicate tags, and the line protocol's own bad input. Each is refused
// alone, with the reason docs/protocol.md §5.4 gives, and the process keeps serving.
import { once } from 'node:events';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataplaneProcess } from '../../native/dataplane/dataplane-process.js';
import { createInfraCa, issueServerCertificate } from '../../src/edge/ca/index.js';
import { waitUntil } from '../helpers/log-capture.js';
import { nativePlaneUnavailable } from '../helpers/native-plane.js';
import { echoServer, type TestServer } from '../helpers/servers.js';

const skip = nativePlaneUnavailable();
if (skip) console.log(`SKIP test/native/dataplane-connector: ${skip}`);

interface Answer {
  status: number;
  reason?: string;
  stream: ClientHttp2Stream;
}

describe.skipIf(!!skip)('zcc-dataplane, connector role, against a scripted edge', () => {
  let plane: DataplaneProcess;
  let server: tls.Server;
  let edge: ClientHttp2Session;
  let echo: TestServer;
  let nextTag = 1;
  const errors: string[] = [];

  beforeAll(async () => {
    echo = await echoServer();
    const ca = await createInfraCa();
    const edgeCert = await issueServerCertificate(ca, { name: 'test-edge', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    // The connector's own certificate: this edge does not check it.
    const connectorCert = await issueServerCertificate(ca, { name: 'test-connector', dnsNames: ['connector.test'] });
    const sessions: ClientHttp2Session[] = [];
    server = tls.createServer({ key: edgeCert.keyPem, cert: edgeCert.chainPem, minVersion: 'TLSv1.3', ALPNProtocols: ['zcc/1'] }, (socket) => {
      // The edge takes the HTTP/2 client role on the socket the connector dialled.
      sessions.push(http2.connect('http://ztunnel.invalid', { createConnection: () => socket }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    plane = await DataplaneProcess.startConnector({ connectMs: 2_000 });
    plane.on('error', (line) => errors.push(line));
    const up = once(plane, 'up');
    plane.tunnel(0, { host: '127.0.0.1', port: (server.address() as AddressInfo).port, serverName: 'localhost', caPem: ca.certPem, certPem: connectorCert.chainPem, keyPem: connectorCert.keyPem });
    await waitUntil(() => sessions.length === 1, 10_000, 'the connector to dial the edge');
    edge = sessions[0]!;
    edge.on('error', () => undefined);
    const control = edge.request({ ':method': 'POST', ':path': '/zcc/1/control', ':scheme': 'http', ':authority': 'ztunnel.invalid' });
    control.on('error', () => undefined);
    await up;
  });

  afterAll(async () => {
    edge?.destroy();
    await plane?.stop();
    await new Promise((r) => server?.close(r));
    await echo?.close();
  });

  function open(headers: OutgoingHttpHeaders): Promise<Answer> {
    const stream = edge.request({ ':method': 'CONNECT', ':authority': 'echo.acme.test:7', 'zcc-tag': String(nextTag++), 'zcc-proto': 'tcp', ...headers }, { endStream: false });
    stream.on('error', () => undefined);
    return new Promise((resolve, reject) => {
      stream.once('response', (h) => resolve({ status: Number(h[':status']), reason: h['zcc-reason'] as string | undefined, stream }));
      stream.once('close', () => reject(new Error(`stream closed without an answer (code ${stream.rstCode})`)));
    });
  }

  /** Sends `text` and a FIN on an accepted open; its status and what came back before the FIN. */
  async function echoed(a: Answer, text: string): Promise<string> {
    const chunks: Buffer[] = [];
    a.stream.on('data', (d: Buffer) => chunks.push(d));
    a.stream.end(text);
    await once(a.stream, 'end');
    return `${a.status} ${Buffer.concat(chunks).toString()}`;
  }

  async function refusedAs(headers: OutgoingHttpHeaders): Promise<string> {
    const a = await open(headers);
    a.stream.close();
    return `${a.status} ${a.reason}`;
  }

  it('refuses each malformed open alone with 400 bad-open', async () => {
    const before = await plane.stats();
    const cases: OutgoingHttpHeaders[] = [
      { 'zcc-tag': '0' },
      { 'zcc-tag': '4294967296' },
      { 'zcc-tag': '12ab' },
      { 'zcc-tag': '' },
      { 'zcc-proto': 'sctp' },
      { 'zcc-proto': undefined },
      { ':authority': 'echo.acme.test' },
      { ':authority': 'echo.acme.test:0' },
      { ':authority': 'echo.acme.test:70000' },
      { ':authority': 'bad-.acme.test:7' },
      { ':authority': '-bad.acme.test:7' },
      { ':authority': 'a..b:7' },
      { ':authority': `${'x'.repeat(64)}.test:7` },
      { ':authority': `${'x'.repeat(300)}:7` },
    ];
    for (const c of cases) expect(await refusedAs(c), JSON.stringify(c)).toBe('400 bad-open');
    expect((await plane.stats()).refused - before.refused).toBe(cases.length);
  });

  it('refuses a second control stream and an open whose tag is in use, and serves the first', async () => {
    const second = edge.request({ ':method': 'POST', ':path': '/zcc/1/control', ':scheme': 'http', ':authority': 'ztunnel.invalid' });
    second.on('error', () => undefined);
    const [h] = (await once(second, 'response')) as [http2.IncomingHttpHeaders];
    expect(`${h[':status']} ${h['zcc-reason']}`).toBe('400 bad-open');

    // An app name the process has no address for: it asks Node, and the open waits.
    const resolving = once(plane, 'resolve');
    const first = open({ ':authority': 'echo.acme.test:7', 'zcc-tag': '4000000000' });
    expect(await resolving).toEqual(['echo.acme.test', 7]);
    expect(await refusedAs({ 'zcc-tag': '4000000000' })).toBe('409 duplicate-tag');
    plane.target('echo.acme.test', 7, '127.0.0.1', echo.port, 60_000);
    expect(await echoed(await first, 'echo me')).toBe('200 echo me');
  });

  it('answers 504 unreachable for a name Node cannot resolve, and for a server that refuses', { timeout: 20_000 }, async () => {
    const asked = once(plane, 'resolve');
    const pending = open({ ':authority': 'nowhere.acme.test:7' });
    await asked;
    plane.unresolved('nowhere.acme.test', 7, 'does not resolve: ENOTFOUND');
    const a = await pending;
    expect(`${a.status} ${a.reason}`).toBe('504 unreachable');
    // This edge keeps its side of the refused stream open: the process resets it after 5 s.
    await once(a.stream, 'close');
    expect(a.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);

    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    plane.target('closed.acme.test', 7, '127.0.0.1', closed, 0);
    expect(await refusedAs({ ':authority': 'closed.acme.test:7' })).toBe('504 unreachable');
  });

  it('rejects malformed commands with an error line and changes nothing', async () => {
    const before = errors.length;
    plane.target('bad host', 7, '127.0.0.1', 1, 0); // a space splits it: wrong field count
    plane.target('x.test', 7, 'not-an-ip', 1, 0);
    plane.target('x.test', 0, '127.0.0.1', 1, 0);
    plane.reset(99, 1, 0x109); // no such tunnel: ignored, as a reset of a gone microtunnel is
    plane.send(7, Buffer.from('no tunnel 7'));
    await waitUntil(() => errors.length - before >= 4, 10_000, 'four error lines');
    expect(errors.slice(before).every((l) => l.startsWith('error '))).toBe(true);
    // Still serving.
    expect(await echoed(await open({ ':authority': 'echo.acme.test:7' }), 'still here')).toBe('200 still here');
    await waitUntil(async () => (await plane.stats()).conns === 0, 10_000, 'every connection released');
  });
});
