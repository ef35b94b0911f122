import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Socks5Server } from '../../src/agent/intercept/socks5.js';
import { Harness } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

/** Says its banner and closes (a server-side FIN first), whatever the client does. */
async function bannerServer(): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.resume();
    s.end('220 banner\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

function readToEnd(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks).toString()));
    s.once('error', reject);
    s.resume();
  });
}

const N = 200;

/**
 * Nothing of a microtunnel outlives it: after many microtunnels opened and closed in every way
 * (both FINs, client reset, server FIN first, refused, agent-side destroy), the agent's, the
 * edge's and the connector's per-connection bookkeeping is back to zero. (A leak check on the
 * code's own maps and sets, not on RSS: V8 keeps freed heap pages mapped.)
 */
describe('microtunnel bookkeeping is released when connections close', () => {
  let echo: TestServer;
  let banner: TestServer;
  let h: Harness;
  let socks: Socks5Server;
  let proxy: { host: string; port: number };

  beforeAll(async () => {
    [echo, banner] = await Promise.all([echoServer(), bannerServer()]);
    h = await new Harness({
      servers: { 'echo.acme.test:7': `127.0.0.1:${echo.port}`, 'banner.acme.test:21': `127.0.0.1:${banner.port}` },
      segments: [
        { id: 'echo', name: 'Echo', domains: ['echo.acme.test'], tcpPorts: [{ from: 7, to: 7 }] },
        { id: 'banner', name: 'Banner', domains: ['banner.acme.test'], tcpPorts: [{ from: 21, to: 21 }] },
      ],
    }).start();
    socks = new Socks5Server({ dialer: h.agent.dial, log: h.logs.log.child({ front: 'socks5' }) });
    proxy = { host: '127.0.0.1', port: (await socks.start({ host: '127.0.0.1', port: 0 })).port };
  });

  afterAll(async () => {
    await socks?.close();
    await h?.stop();
    await Promise.all([echo?.close(), banner?.close()]);
  });

  const held = () => ({
    socksActive: socks.counters.active,
    socksTracked: socks.tracked,
    agentMicrotunnels: h.tenant.tunnel.openMicrotunnels,
    edgeMicrotunnels: h.cloud.edge.openMicrotunnels,
    dispatcherActive: h.cloud.dispatcher.list().map((c) => c.active),
    connector: h.connectors.map((c) => c.tracked),
  });
  const released = {
    socksActive: 0,
    socksTracked: { sockets: 0, splices: 0 },
    agentMicrotunnels: 0,
    edgeMicrotunnels: 0,
    dispatcherActive: [0],
    connector: [{ microtunnels: 0, upstreams: 0 }],
  };

  it(`releases everything after ${N * 4} microtunnels closed in every way`, { timeout: 60_000 }, async () => {
    const established = socks.counters.established;
    await Promise.all([
      // Both FINs: echo, then the client ends and reads to the end.
      ...Array.from({ length: N }, async (_, i) => {
        const s = await socksConnect(proxy, 'echo.acme.test', 7);
        const reply = readToEnd(s);
        s.end(`clean ${i}`);
        expect(await reply).toBe(`clean ${i}`);
        s.destroy();
      }),
      // The client resets the connection in the middle.
      ...Array.from({ length: N }, async () => {
        const s = await socksConnect(proxy, 'echo.acme.test', 7);
        s.write('then reset');
        s.resetAndDestroy();
      }),
      // The server closes first.
      ...Array.from({ length: N }, async () => {
        const s = await socksConnect(proxy, 'banner.acme.test', 21);
        const text = readToEnd(s);
        expect(await text).toBe('220 banner\r\n');
        s.end();
      }),
      // Opened on the agent without a front end and destroyed there.
      ...Array.from({ length: N }, async () => {
        const stream = await h.agent.dial({ host: 'echo.acme.test', port: 7 });
        stream.on('error', () => undefined);
        stream.destroy();
      }),
      // Refused by policy: the client gets a SOCKS error, no microtunnel is established.
      ...Array.from({ length: 50 }, async () => {
        await expect(socksConnect(proxy, 'nope.acme.test', 7)).rejects.toThrow();
      }),
    ]);
    expect(socks.counters.established - established).toBe(3 * N);
    // Closing takes a few turns at each hop; on a timeout the expectation shows what is left.
    await waitUntil(() => JSON.stringify(held()) === JSON.stringify(released), 20_000, 'bookkeeping released').catch(() => undefined);
    expect(held()).toEqual(released);
  });
});
