import type { Http2Stream } from 'node:http2';
import type { Logger } from '../../common/log.js';
import { reasonFromCode, type ResetReason } from '../../protocol/microtunnel-open.js';
import { resetMicrotunnel } from '../../protocol/session.js';

export interface StitchCounters {
  up: number;
  down: number;
}

/**
 * Joins the agent's microtunnel to the connector's (the tag swap of seed 002 step 6): payload
 * flows both ways with backpressure through each hop's window, each direction half-closes on
 * its own, and a reset on one hop becomes a reset on the other with the reason carried across.
 */
export function stitch(
  agent: Http2Stream,
  connector: Http2Stream,
  log: Logger,
  connectorGone: () => boolean,
): Promise<StitchCounters> {
  const counters: StitchCounters = { up: 0, down: 0 };
  agent.on('data', (c: Buffer) => (counters.up += c.length));
  connector.on('data', (c: Buffer) => (counters.down += c.length));
  agent.pipe(connector);
  connector.pipe(agent);
  agent.on('error', () => undefined);
  connector.on('error', () => undefined);
  return new Promise((resolve) => {
    let closed = 0;
    const done = (): void => {
      if (++closed === 2) resolve(counters);
    };
    connector.once('close', () => {
      if (connector.rstCode) {
        const reason: ResetReason = connectorGone() ? 'connector-gone' : reasonFromCode(connector.rstCode);
        log.info({ reason, code: connector.rstCode }, 'connector side reset; resetting agent side');
        resetMicrotunnel(agent, reason === 'peer-reset' ? 'upstream-reset' : reason);
      }
      done();
    });
    agent.once('close', () => {
      if (agent.rstCode) resetMicrotunnel(connector, 'peer-reset');
      done();
    });
  });
}
