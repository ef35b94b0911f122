// The connector's native data plane (ConnectorConfig.dataPlane 'native', native/dataplane in the
// connector role) against the reference cloud over real sockets: what microtunnel-data.test.ts
// does not reach. Early data held through the server's connect, the resolve path through Node,
// refusals (closed port, unknown name), a server's reset, datagram microtunnels, the edge's
// reset requests, and serving on after all of it.
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatagramChannel } from '../../src/protocol/datagram.js';
import { resetReasonOf } from '../../src/protocol/microtunnel-reset.js';
import type { Http2Stream } from 'node:http2';
import type { DataplaneStats } from '../../native/dataplane/dataplane-process.js';
import { Harness, type HarnessOptions } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';
import { nativePlaneUnavailable } from '../helpers/native-plane.js';
import { echoServer, type TestServer } from '../helpers/servers.js';

const skip = nativePlaneUnavailable();
if (skip) console.log(`SKIP test/e2e/native-connector: ${skip}`);

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** Accepts, reads the first bytes, then resets the connection. */
async function resettingServer(): Promise<TestServer> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => s.resetAndDestroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

async function udpEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, from) => s.send(m, from.port, from.address));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return { port: s.address().port, close: () => new Promise((r) => s.close(() => r())) };
}

const tcp = (id: string, port: number): HarnessOptions['segments'][number] => ({ id, name: id, domains: [`${id}.acme.test`], tcpPorts: [{ from: port, to: port }] });

describe.skipIf(!!skip)('connector with the native data plane', () => {
  let h: Harness;
  let echo: TestServer;
  let resetting: TestServer;
  let flaky: TestServer;
  let udp: Awaited<ReturnType<typeof udpEcho>>;
  const stats = (): Promise<DataplaneStats> => h.connectors[0]!.dataPlaneStats()!;

  beforeAll(async () => {
    [echo, resetting, flaky, udp] = await Promise.all([echoServer(), resettingServer(), echoServer(), udpEcho()]);
    const closed = await closedPort();
    h = await new Harness({
      servers: {
        'echo.acme.test:7': `127.0.0.1:${echo.port}`,
        // A host name, not an address: the process asks Node, which looks it up.
        'byname.acme.test:7': `localhost:${echo.port}`,
        'closed.acme.test:7': `127.0.0.1:${closed}`,
        'reset.acme.test:7': `127.0.0.1:${resetting.port}`,
        'flaky.acme.test:7': `127.0.0.1:${flaky.port}`,
        'udp.acme.test:53': `127.0.0.1:${udp.port}`,
      },
      segments: [
        tcp('echo', 7),
        tcp('byname', 7),
        tcp('closed', 7),
        tcp('reset', 7),
        tcp('flaky', 7),
        // No static entry and no DNS name: the resolve path's refusal.
        tcp('nowhere', 7),
        // The harness types segments as TCP-only; it passes udpPorts through unchanged.
        { id: 'udp', name: 'udp', domains: ['udp.acme.test'], tcpPorts: [], udpPorts: [{ from: 53, to: 53 }] } as unknown as HarnessOptions['segments'][number],
      ],
      connectorDataPlane: 'native',
      // Looked-up addresses expire at once: every open of a name goes through the process's
      // `resolve` request to Node (static IPv4 entries are kept for good).
      connectorResolveCacheMs: 1,
    }).start();
  });

  afterAll(async () => {
    await h?.stop();
    await Promise.all([echo?.close(), resetting?.close(), flaky?.close(), udp?.close()]);
  });

  async function echoOnce(host: string, payload: string): Promise<string> {
    const opened = h.agent.open({ proto: 'tcp', host, port: 7 });
    const chunks: Buffer[] = [];
    opened.stream.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise((resolve, reject) => {
      opened.stream.once('end', resolve);
      opened.stream.once('error', reject);
    });
    // Written before the answer: it waits at the connector while the server is dialled.
    opened.stream.end(payload);
    await opened.established;
    await ended;
    return Buffer.concat(chunks).toString();
  }

  async function refusal(host: string): Promise<string> {
    const opened = h.agent.open({ proto: 'tcp', host, port: 7 });
    opened.stream.on('error', () => undefined);
    const err = await opened.established.then(
      () => new Error('established'),
      (e: Error) => e,
    );
    expect(err.message).not.toBe('established');
    return (err as Error & { reason?: string }).reason ?? err.message;
  }

  it('carries early data through the server connect, in order, and counts it in the process', async () => {
    const before = await stats();
    expect(await echoOnce('echo.acme.test', 'early bytes, then FIN')).toBe('early bytes, then FIN');
    const after = await stats();
    expect(after.established - before.established).toBe(1);
    expect(after.bytesDown - before.bytesDown).toBe('early bytes, then FIN'.length);
    expect(after.bytesUp - before.bytesUp).toBe('early bytes, then FIN'.length);
  });

  it('dials a static entry that names a host, looked up by Node at the process’s request', async () => {
    const lookups = (): number => h.logs.lines.filter((l) => l.msg === 'app address for the native data plane' && l.target === 'byname.acme.test:7').length;
    const before = lookups();
    for (let i = 0; i < 3; i++) expect(await echoOnce('byname.acme.test', `by name ${i}`)).toBe(`by name ${i}`);
    // Its cached address expires at once (resolveCacheMs 1): asked for again by every open but
    // perhaps the first, which may still find what the edge's probe just pushed.
    expect(lookups() - before).toBeGreaterThanOrEqual(2);
  });

  it('refuses an open whose server went away since the probe, as unreachable, and serves on', async () => {
    // The edge's probe found the server (cached 30 s); then it stops listening: the process's
    // own connect fails and it answers 504 unreachable.
    expect(await echoOnce('flaky.acme.test', 'up')).toBe('up');
    await flaky.close();
    const before = await stats();
    expect(await refusal('flaky.acme.test')).toBe('unreachable');
    expect((await stats()).refused - before.refused).toBe(1);
    expect(await echoOnce('echo.acme.test', 'still serving')).toBe('still serving');
  });

  it('is refused by the edge for a closed port or an unknown name (its probe fails first)', async () => {
    expect(await refusal('closed.acme.test')).toBe('unreachable');
    expect(await refusal('nowhere.acme.test')).toBe('unreachable');
  });

  it('turns a server reset into a reset at the agent', async () => {
    const opened = h.agent.open({ proto: 'tcp', host: 'reset.acme.test', port: 7 });
    await opened.established;
    opened.stream.on('error', () => undefined);
    const closed = new Promise((resolve) => opened.stream.once('close', resolve));
    opened.stream.write('hello');
    await closed;
    expect(opened.stream.readableEnded).toBe(false);
    expect(resetReasonOf(opened.stream as Http2Stream)).toBe('upstream-reset');
  });

  it('carries a datagram microtunnel both ways, and ends it cleanly', async () => {
    const opened = h.agent.open({ proto: 'udp', host: 'udp.acme.test', port: 53 });
    await opened.established;
    const ch = new DatagramChannel(opened.stream);
    const got: string[] = [];
    const three = new Promise<void>((resolve) => ch.on('datagram', (d) => got.push(d.toString()) === 3 && resolve()));
    ch.send(Buffer.from('one'));
    ch.send(Buffer.alloc(0));
    ch.send(Buffer.from('three'));
    await three;
    expect(got).toEqual(['one', '', 'three']);
    const ended = new Promise<Error | undefined>((resolve) => ch.once('end', resolve));
    ch.end();
    expect(await ended).toBeUndefined();
  });

  it('resets at the edge’s request: 1,200 client resets leave the Z-Tunnels up', { timeout: 60_000 }, async () => {
    const mark = h.logs.lines.length;
    for (let i = 0; i < 1_200; i++) {
      const stream = await h.agent.dial({ host: 'echo.acme.test', port: 7 });
      await new Promise<void>((resolve, reject) => {
        stream.once('data', () => resolve());
        stream.once('error', reject);
        stream.write('x');
      });
      stream.destroy();
    }
    expect(await echoOnce('echo.acme.test', 'after the storm')).toBe('after the storm');
    const teardowns = h.logs.lines.slice(mark).filter((l) => l.msg === 'peer sent goaway' || l.msg === 'Z-Tunnel to edge down' || l.msg === 'Z-Tunnel torn down');
    expect(teardowns).toEqual([]);
    await expect.poll(async () => (await stats()).active, { timeout: 10_000 }).toBe(0);
  });

  it('dials the edge again when its Z-Tunnel drops, and serves on', async () => {
    const [handle] = h.cloud.dispatcher.list();
    expect(handle).toBeDefined();
    const mark = h.logs.lines.length;
    handle!.session.destroy(new Error('dropped by the test'));
    await waitUntil(() => h.logs.lines.slice(mark).some((l) => l.msg === 'Z-Tunnel to edge up' && l.dataPlane === 'native'), 15_000, 'the native Z-Tunnel up again');
    await waitUntil(() => h.cloud.dispatcher.list().some((c) => c !== handle && !c.session.closed), 15_000, 'the connector registered again');
    expect(await echoOnce('echo.acme.test', 'after the drop')).toBe('after the drop');
  });

  it('holds nothing once every microtunnel is done: refused, reset, failed and closed ones alike', async () => {
    // After all of the above (refusals, a server reset, a datagram flow, 1,200 client resets).
    await expect.poll(async () => (await stats()).conns, { timeout: 10_000 }).toBe(0);
  });
});
