import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Socks5Server } from '../../src/agent/intercept/socks5.js';
import { STREAM_WINDOW } from '../../src/protocol/h2-settings.js';
import { Harness } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';
import { nativePlaneUnavailable } from '../helpers/native-plane.js';
import { bulkHttpServer, echoServer, sinkServer, sourceServer, type TestServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

const run = promisify(execFile);
const GiB = 1 << 30;
const BULK = Number(process.env.ZCC_TEST_BULK_BYTES ?? GiB);

const nativeSkip = nativePlaneUnavailable();
if (nativeSkip) console.log(`SKIP test/e2e/microtunnel-data with the native connector: ${nativeSkip}`);
const PLANES = nativeSkip ? (['node'] as const) : (['node', 'native'] as const);

describe.each(PLANES)('microtunnels end to end (agent → edge → connector → server), %s connector data plane', (connectorDataPlane) => {
  let echo: TestServer;
  let bulk: Awaited<ReturnType<typeof bulkHttpServer>>;
  let source: Awaited<ReturnType<typeof sourceServer>>;
  let sink: TestServer;
  let h: Harness;
  let socks: Socks5Server;
  let proxy: { host: string; port: number };

  beforeAll(async () => {
    [echo, bulk, source, sink] = await Promise.all([echoServer(), bulkHttpServer(), sourceServer(), sinkServer()]);
    h = await new Harness({
      servers: {
        'echo.acme.test:7': `127.0.0.1:${echo.port}`,
        'bulk.acme.test:80': `127.0.0.1:${bulk.port}`,
        'source.acme.test:9': `127.0.0.1:${source.port}`,
        'sink.acme.test:9': `127.0.0.1:${sink.port}`,
      },
      segments: [
        { id: 'echo', name: 'Echo', domains: ['echo.acme.test'], tcpPorts: [{ from: 7, to: 7 }] },
        { id: 'bulk', name: 'Bulk', domains: ['bulk.acme.test'], tcpPorts: [{ from: 80, to: 80 }] },
        { id: 'source', name: 'Source', domains: ['source.acme.test'], tcpPorts: [{ from: 9, to: 9 }] },
        { id: 'sink', name: 'Sink', domains: ['sink.acme.test'], tcpPorts: [{ from: 9, to: 9 }] },
      ],
      connectorDataPlane,
    }).start();
    socks = new Socks5Server({ dialer: h.agent.dial, log: h.logs.log.child({ front: 'socks5' }) });
    const a = await socks.start({ host: '127.0.0.1', port: 0 });
    proxy = { host: '127.0.0.1', port: a.port };
  });

  afterAll(async () => {
    await socks?.close();
    await h?.stop();
    await Promise.all([echo?.close(), bulk?.close(), source?.close(), sink?.close()]);
  });

  // A data check, not a speed check: on a loaded 2-core CI machine 1 GiB each way can take minutes.
  it(`carries ${BULK} bytes each way through one microtunnel with matching SHA-256`, { timeout: 300_000 }, async () => {
    const s = await socksConnect(proxy, 'echo.acme.test', 7);
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let got = 0;
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => {
        received.update(d);
        got += d.length;
      });
      s.once('end', resolve);
      s.once('error', reject);
    });
    s.resume();
    const chunk = Buffer.alloc(64 << 10);
    for (let left = BULK; left > 0; ) {
      const piece = Buffer.from(randomFillSync(chunk).subarray(0, Math.min(left, chunk.length)));
      left -= piece.length;
      sent.update(piece);
      if (!s.write(piece)) await new Promise((r) => s.once('drain', r));
    }
    s.end();
    await done;
    expect(got).toBe(BULK);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
  });

  it(`downloads ${BULK} bytes over HTTP with curl --socks5-hostname and the same SHA-256`, { timeout: 300_000 }, async () => {
    const id = randomBytes(6).toString('hex');
    const { stdout } = await run('bash', ['-c', `set -o pipefail; curl -sS --fail --socks5-hostname ${proxy.host}:${proxy.port} http://bulk.acme.test/bytes/${BULK}?id=${id} | sha256sum`], {
      timeout: 300_000,
    });
    expect(stdout.split(' ')[0]).toBe(bulk.hashes.get(id));
  });

  it('honours half-close: the client shuts its write side and still gets the reply', async () => {
    const s = await socksConnect(proxy, 'echo.acme.test', 7);
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise<void>((r) => s.once('end', r));
    s.resume();
    s.end('request then FIN');
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('request then FIN');
  });

  it('runs 1,000 concurrent microtunnels over one Z-Tunnel, all completing', async () => {
    const before = h.cloud.edge.counters.get('acme')!.microtunnelsOpened;
    const results = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const payload = Buffer.from(`microtunnel ${i} ${randomBytes(16).toString('hex')}`);
        const stream = await h.agent.dial({ host: 'echo.acme.test', port: 7 });
        const chunks: Buffer[] = [];
        stream.on('data', (d: Buffer) => chunks.push(d));
        const ended = new Promise<void>((resolve, reject) => {
          stream.once('end', resolve);
          stream.once('error', reject);
        });
        stream.end(payload);
        await ended;
        return Buffer.concat(chunks).equals(payload);
      }),
    );
    expect(results.filter(Boolean)).toHaveLength(1000);
    expect(h.cloud.edge.counters.get('acme')!.microtunnelsOpened - before).toBe(1000);
    // Every one of them rode the same Z-Tunnel: one agent session at the edge.
    expect(h.logs.lines.filter((l) => l.msg === 'Z-Tunnel up' && String(l.peer).startsWith('agent'))).toHaveLength(1);
  });

  it('keeps a fast microtunnel moving while another reader is stalled, with bounded buffering', async () => {
    const stalled = await h.agent.dial({ host: 'source.acme.test', port: 9 });
    stalled.pause();
    const stalledIndex = source.written.length - 1;
    // Wait until the stalled path stops taking data: every window on the way is full.
    let last = -1;
    await waitUntil(
      () => {
        const now = source.written[stalledIndex]!;
        const settled = now === last && now > 0;
        last = now;
        return settled;
      },
      20_000,
      'the stalled microtunnel to fill its windows',
    );
    const plateau = source.written[stalledIndex]!;

    const fast: Socket = await socksConnect(proxy, 'source.acme.test', 9);
    let fastBytes = 0;
    const target = 256 << 20;
    await new Promise<void>((resolve) => {
      fast.on('data', (d: Buffer) => {
        fastBytes += d.length;
        if (fastBytes >= target) resolve();
      });
      fast.resume();
    });
    fast.destroy();

    // The stalled microtunnel never buffered more than its windows and socket buffers allow.
    expect(stalled.readableLength).toBeLessThanOrEqual(STREAM_WINDOW + (64 << 10));
    expect(source.written[stalledIndex]!).toBeLessThan(plateau + (8 << 20));
    expect(source.written[stalledIndex]!).toBeLessThan(32 << 20);
    expect(fastBytes).toBeGreaterThanOrEqual(target);
    stalled.destroy();
  });

  it('bounds what the path buffers upstream when the server stops reading', async () => {
    const s = await socksConnect(proxy, 'sink.acme.test', 9);
    const chunk = randomFillSync(Buffer.alloc(64 << 10));
    let stop = false;
    const writer = (): void => {
      while (!stop && s.write(chunk));
      if (!stop) s.once('drain', writer);
    };
    writer();
    // Wait until the client can push no more: every window and socket buffer on the way is full.
    let last = -1;
    await waitUntil(
      () => {
        const now = s.bytesWritten;
        const settled = now === last && now > 0;
        last = now;
        return settled;
      },
      20_000,
      'the upload path to fill up',
    );
    stop = true;
    // Kernel buffers at both ends plus one 1 MiB window per hop, nowhere near the 256 MiB+ an
    // unbounded relay would take.
    expect(s.bytesWritten).toBeLessThan(48 << 20);
    s.destroy();
  });
});
