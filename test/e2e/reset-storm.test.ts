import { describe, expect, it } from 'vitest';
import { useEchoHarness } from '../helpers/echo-harness.js';

/**
 * A server's nghttp2 allows its peer 1,000 RST_STREAMs in a burst, then 33 a second, and past
 * that tears the whole session down (GOAWAY INTERNAL_ERROR; the CVE-2023-44487 "rapid reset"
 * limit). Agents and the edge reset microtunnels whenever a client aborts a connection, so a
 * browser closing many connections, or the edge relaying every user's aborts to one connector,
 * would take down a Z-Tunnel and every microtunnel on it. Clients ask the server to reset
 * instead (docs/protocol.md §5.3): here 2,500 microtunnels, each reset by the agent right
 * after its first echo, leave both the agent's and the edge's session up.
 */
describe('a storm of resets from the HTTP/2 client side', () => {
  const world = useEchoHarness();

  async function echoThenReset(): Promise<void> {
    const stream = await world.h.agent.dial({ host: 'echo.acme.test', port: 7 });
    await new Promise<void>((resolve, reject) => {
      stream.once('data', () => resolve());
      stream.once('error', reject);
      stream.write('x');
    });
    stream.destroy();
  }

  it('keeps the agent and connector sessions up through 2,500 resets in a row', { timeout: 60_000 }, async () => {
    const { h } = world;
    const mark = h.logs.lines.length;
    for (let i = 0; i < 2_500; i++) await echoThenReset();
    await echoThenReset();
    const teardowns = h.logs.lines.slice(mark).filter((l) => l.msg === 'peer sent goaway' || l.msg === 'Z-Tunnel down' || l.msg === 'Z-Tunnel torn down');
    expect(teardowns).toEqual([]);
    expect(h.tenant.tunnel.status.state).toBe('connected');
  });

  it('keeps them up when the reset streams still have data in flight towards the server', { timeout: 60_000 }, async () => {
    // Between the reset request and the server's RST_STREAM the agent's DATA keeps arriving for
    // a stream the server has closed: nghttp2 must drop it, not count it against the session.
    const { h } = world;
    const mark = h.logs.lines.length;
    const chunk = Buffer.alloc(64 << 10, 1);
    for (let i = 0; i < 300; i++) {
      const stream = await h.agent.dial({ host: 'echo.acme.test', port: 7 });
      await new Promise<void>((resolve, reject) => {
        stream.once('data', () => resolve());
        stream.once('error', reject);
        for (let k = 0; k < 4; k++) stream.write(chunk);
      });
      stream.destroy();
    }
    await echoThenReset();
    const teardowns = h.logs.lines.slice(mark).filter((l) => l.msg === 'peer sent goaway' || l.msg === 'Z-Tunnel down' || l.msg === 'Z-Tunnel torn down');
    expect(teardowns).toEqual([]);
  });
});
