import type { Http2Stream } from 'node:http2';
import type { Logger } from '../../common/log.js';
import { reasonFromCode, type ResetReason } from '../../protocol/microtunnel-open.js';
import { endedByReset, resetMicrotunnel } from '../../protocol/session.js';

export interface StitchCounters {
  up: number;
  down: number;
}

/**
 * One direction of a stitch. The far end's FIN is passed on only after the events of the
 * current I/O turn have run: a stream torn down with its session can emit 'end' just before
 * its close, and forwarding that FIN would turn a reset into a silently truncated stream.
 */
function forward(src: Http2Stream, dst: Http2Stream, count: (n: number) => void, failed: () => boolean): void {
  src.pipe(dst, { end: false });
  src.on('data', (c: Buffer) => count(c.length));
  src.once('end', () =>
    setImmediate(() => {
      if (!failed() && !endedByReset(src) && !dst.destroyed && !dst.closed) dst.end();
    }),
  );
}

/**
 * Joins the agent's microtunnel to the connector's (the tag swap of seed 002 step 6): payload
 * flows both ways with backpressure through each hop's window, each direction half-closes on
 * its own, and a reset on one hop becomes a reset on the other with the reason carried across.
 */
export function stitch(agent: Http2Stream, connector: Http2Stream, log: Logger, connectorGone: () => boolean): Promise<StitchCounters> {
  const counters: StitchCounters = { up: 0, down: 0 };
  // A stream destroyed with its session (a killed connector, a dropped agent) may close without
  // an RST code of its own: anything but a clean end in both directions counts as a reset.
  const abnormal = (s: Http2Stream): boolean => !!s.rstCode || (s.closed && !s.readableEnded);
  forward(agent, connector, (n) => (counters.up += n), () => abnormal(agent));
  forward(connector, agent, (n) => (counters.down += n), () => abnormal(connector) || connectorGone());
  agent.on('error', () => undefined);
  connector.on('error', () => undefined);
  return new Promise((resolve) => {
    let closed = 0;
    const done = (): void => {
      if (++closed === 2) resolve(counters);
    };
    connector.once('close', () => {
      if (abnormal(connector) || connectorGone() || endedByReset(connector)) {
        const reason: ResetReason = connectorGone() ? 'connector-gone' : reasonFromCode(connector.rstCode);
        log.info({ reason, code: connector.rstCode }, 'connector side reset; resetting agent side');
        resetMicrotunnel(agent, reason === 'peer-reset' ? 'upstream-reset' : reason);
      }
      done();
    });
    agent.once('close', () => {
      if (abnormal(agent) || endedByReset(agent)) resetMicrotunnel(connector, 'peer-reset');
      done();
    });
  });
}
