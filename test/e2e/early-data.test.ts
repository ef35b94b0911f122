import { describe, expect, it } from 'vitest';
import type { IncomingMicrotunnel } from '../../src/protocol/session.js';
import { useEchoHarness } from '../helpers/echo-harness.js';
import { waitUntil } from '../helpers/log-capture.js';

/**
 * Seed 003: "user data is cached before the µtunnel is established". What the agent writes into
 * a microtunnel ahead of the answer travels with the open: the edge passes it on to the
 * connector's microtunnel at once, so it is already at the connector while the connector is
 * still dialling the server, instead of waiting for the connector's answer to come back to the
 * edge. The connector here holds its answer until those bytes have arrived: if the edge held
 * them back until that answer, they would never arrive and the test would fail on its deadline.
 */
describe('early data crosses the edge before the connector answers', () => {
  const world = useEchoHarness();

  it('reaches the connector before its answer and the server in order after it', async () => {
    const { h } = world;
    const early = Buffer.from('GET / HTTP/1.1\r\nHost: echo.acme.test\r\n\r\n');
    const connector = h.connectors[0] as unknown as { serve(m: IncomingMicrotunnel): Promise<void> };
    const serve = connector.serve.bind(connector);
    const buffered: number[] = [];
    let failure: Error | undefined;
    connector.serve = async (m) => {
      // Not answered yet: the bytes can only be here if the edge forwarded them unanswered.
      try {
        await waitUntil(() => m.stream.readableLength >= early.length, 5_000, 'early data at the connector');
      } catch (err) {
        failure = err as Error;
        return m.reject('unreachable', 'early data never arrived');
      }
      buffered.push(m.stream.readableLength);
      return serve(m);
    };
    try {
      const opened = h.agent.open({ proto: 'tcp', host: 'echo.acme.test', port: 7 });
      opened.stream.write(early);
      await opened.established.catch(() => undefined);
      expect(failure?.message).toBeUndefined();
      const echoed: Buffer[] = [];
      opened.stream.on('data', (d: Buffer) => echoed.push(d));
      opened.stream.end(' and more');
      await new Promise((resolve) => opened.stream.once('end', resolve));
      expect(Buffer.concat(echoed).toString()).toBe(`${early.toString()} and more`);
      expect(buffered).toEqual([early.length]);
    } finally {
      connector.serve = serve;
    }
  });
});
