// Datagram microtunnels (protocol.md §5.5) without the kernel part: agent → edge → connector →
// a UDP echo server, through the agent's open({ proto: 'udp' }). Runs anywhere, no root needed.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatagramChannel } from '../../src/protocol/datagram.js';
import { Harness, type HarnessOptions } from '../helpers/harness.js';
import { waitUntil } from '../helpers/log-capture.js';

describe('datagram microtunnels', () => {
  let harness: Harness;
  let echo: dgram.Socket;

  beforeAll(async () => {
    echo = dgram.createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
    const port = (echo.address() as AddressInfo).port;
    harness = await new Harness({
      // The harness types segments as TCP-only; it passes udpPorts through unchanged.
      segments: [{ id: 'dns', name: 'DNS-ish', domains: ['udp.kern.test'], tcpPorts: [], udpPorts: [{ from: 5300, to: 5300 }] }] as unknown as HarnessOptions['segments'],
      servers: { 'udp.kern.test:5300': `127.0.0.1:${port}` },
    }).start();
  });

  afterAll(async () => {
    await harness?.stop();
    echo?.close();
  });

  it('carries datagrams both ways, boundaries and empty datagrams included, sent before the answer', async () => {
    const opened = harness.agent.open({ proto: 'udp', host: 'udp.kern.test', port: 5300 });
    const ch = new DatagramChannel(opened.stream);
    const got: Buffer[] = [];
    ch.on('datagram', (d) => got.push(d));
    const sent = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(60_000, 7), Buffer.from('last')];
    for (const d of sent) expect(ch.send(d)).toBe(true); // early: not established yet
    await opened.established;
    await waitUntil(() => got.length === sent.length, 10_000, 'all echoes');
    expect(got.map((b) => b.length)).toEqual(sent.map((b) => b.length));
    expect(got.every((b, i) => b.equals(sent[i]!))).toBe(true);
    const ended = new Promise((r) => ch.once('end', r));
    ch.end();
    expect(await ended).toBeUndefined(); // the connector answers our FIN with its own
  });

  it('refuses a UDP port outside the segment at the edge', async () => {
    const opened = harness.agent.open({ proto: 'udp', host: 'udp.kern.test', port: 5301 });
    await expect(opened.established).rejects.toMatchObject({ reason: 'not-an-app' });
  });
});
