import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Socks5Server } from '../../src/agent/intercept/socks5.js';
import { Harness } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';
import { echoServer, sourceServer, type TestServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';

describe('a connector killed mid-stream', () => {
  let source: Awaited<ReturnType<typeof sourceServer>>;
  let echo: TestServer;
  let h: Harness;
  let socks: Socks5Server;
  let proxy: { host: string; port: number };
  let first: ZccProcess;

  beforeAll(async () => {
    [source, echo] = await Promise.all([sourceServer(), echoServer()]);
    const servers = { 'source.acme.test:9': `127.0.0.1:${source.port}`, 'echo.acme.test:7': `127.0.0.1:${echo.port}` };
    h = await new Harness({
      servers,
      connectors: 0,
      segments: [
        { id: 'source', name: 'Source', domains: ['source.acme.test'], tcpPorts: [{ from: 9, to: 9 }] },
        { id: 'echo', name: 'Echo', domains: ['echo.acme.test'], tcpPorts: [{ from: 7, to: 7 }] },
      ],
    }).start();
    // The first connector is a real `zcc connector` process, so it can really be killed.
    const config = join(h.dataDir, 'connector-proc.json');
    await writeFile(
      config,
      JSON.stringify({
        name: 'conn-proc',
        dataDir: join(h.dataDir, 'conn-proc'),
        cloud: { tunnel: h.cloud.tunnel, enroll: h.cloud.enroll, serverName: 'localhost', caFile: h.cloud.caFile },
        provisioningKey: h.provisioningKey,
        staticServers: servers,
      }),
    );
    first = await spawnZcc(['connector', '--config', config]);
    await waitUntil(() => h.cloud.dispatcher.list().some((c) => c.id === 'conn-proc'), 10_000, 'conn-proc registered');
    socks = new Socks5Server({ dialer: h.agent.dial, log: h.logs.log.child({ front: 'socks5' }) });
    proxy = { host: '127.0.0.1', port: (await socks.start({ host: '127.0.0.1', port: 0 })).port };
  });

  afterAll(async () => {
    await first?.stop('SIGKILL');
    await socks?.close();
    await h?.stop();
    await Promise.all([source?.close(), echo?.close()]);
  });

  it('resets its microtunnels (a reset, not a hang or a clean end) and new ones use a healthy connector', async () => {
    const client = await socksConnect(proxy, 'source.acme.test', 9);
    let received = 0;
    let ended = false;
    client.on('data', (d: Buffer) => (received += d.length));
    client.on('end', () => (ended = true));
    const failure = new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
    client.resume();
    await waitUntil(() => received > 4 << 20, 10_000, 'data flowing through conn-proc');
    expect(h.logs.find((l) => l.msg === 'microtunnel stitched' && l.connector === 'conn-proc')).toBeTruthy();

    await h.addConnector('conn-2');
    first.child.kill('SIGKILL');

    const err = await failure;
    expect(err.code).toBe('ECONNRESET');
    expect(ended).toBe(false);
    await h.logs.waitFor((l) => l.reason === 'connector-gone');

    // conn-proc is gone from the dispatcher; the next microtunnel goes to conn-2 and works.
    await waitUntil(() => !h.cloud.dispatcher.list().some((c) => c.id === 'conn-proc'), 10_000, 'conn-proc unregistered');
    const s = await socksConnect(proxy, 'echo.acme.test', 7);
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const done = new Promise<void>((r) => s.once('end', r));
    s.resume();
    s.end('after failover');
    await done;
    expect(Buffer.concat(chunks).toString()).toBe('after failover');
    const stitched = h.logs.lines.filter((l) => l.msg === 'microtunnel stitched');
    expect(stitched.at(-1)?.connector).toBe('conn-2');
  });
});
