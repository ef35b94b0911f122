import type { Http2Stream } from 'node:http2';
import type { Logger } from '../../common/log.js';
import { reasonFromCode, type ResetReason } from '../../protocol/microtunnel-open.js';
import { endedByReset, resetMicrotunnel } from '../../protocol/microtunnel-reset.js';
import { SPLICE_BUFFER } from '../../protocol/splice.js';

export interface StitchCounters {
  up: number;
  down: number;
}

/**
 * One direction of a stitch. Chunks go straight from one stream to the other; the source is
 * paused while the sink holds SPLICE_BUFFER bytes (each hop's HTTP/2 window bounds the rest),
 * so one event-loop turn forwards everything it read in one batch. The far end's FIN is passed
 * on only after the events of the current I/O turn have run: a stream torn down with its
 * session can emit 'end' just before its close, and forwarding that FIN would turn a reset into
 * a silently truncated stream.
 */
function forward(src: Http2Stream, dst: Http2Stream, count: (n: number) => void, failed: () => boolean): void {
  let waiting = false;
  let inTurn = false;
  let corked = false;
  const onDrain = (): void => {
    waiting = false;
    src.resume();
  };
  const endTurn = (): void => {
    inTurn = false;
    if (!corked) return;
    corked = false;
    dst.uncork();
  };
  // A TLS read arrives as several DATA chunks in one turn. The first is written at once, so
  // HTTP/2 sends it in this turn's write (a request, a response's first bytes: what a user
  // waits for). The rest are corked until the turn's end and reach HTTP/2 as one write (one
  // _writev), not one write request each; HTTP/2 sends them a turn later, which only bulk
  // transfers see. Corking the first too delayed every request and response by that turn:
  // HTTP/2 schedules its socket write for the turn in which data reaches it.
  src.on('data', (c: Buffer) => {
    count(c.length);
    if (dst.destroyed) return; // its 'close' resets this side
    if (!inTurn) {
      inTurn = true;
      setImmediate(endTurn);
    } else if (!corked) {
      corked = true;
      dst.cork();
    }
    if (!dst.write(c) && dst.writableLength >= SPLICE_BUFFER && !waiting) {
      waiting = true;
      src.pause();
      dst.once('drain', onDrain);
    }
  });
  src.on('end', () =>
    setImmediate(() => {
      if (!failed() && !endedByReset(src) && !dst.destroyed && !dst.closed) dst.end();
    }),
  );
}

/**
 * Starts the agent → connector direction as soon as the connector-side stream exists, before
 * the connector has answered: what the agent sent ahead of our answer (its early data, seed 003)
 * travels with the open instead of waiting a round trip to the connector and back. The
 * connector holds it until its TCP connect is done. If the connector refuses, the agent's
 * stream is refused and what was forwarded dies with the connector's stream.
 */
export function forwardEarly(agent: Http2Stream, connector: Http2Stream): StitchCounters {
  const counters: StitchCounters = { up: 0, down: 0 };
  forward(agent, connector, (n) => (counters.up += n), () => abnormal(agent));
  return counters;
}

/** A stream destroyed with its session (a killed connector, a dropped agent) may close without
 * an RST code of its own: anything but a clean end in both directions counts as a reset. */
function abnormal(s: Http2Stream): boolean {
  return !!s.rstCode || (s.closed && !s.readableEnded);
}

/**
 * Joins the agent's microtunnel to the connector's (the tag swap of seed 002 step 6) once both
 * are established, the agent → connector direction already running (forwardEarly): payload
 * flows both ways with backpressure through each hop's window, each direction half-closes on
 * its own, and a reset on one hop becomes a reset on the other with the reason carried across.
 */
export function stitch(
  agent: Http2Stream,
  connector: Http2Stream,
  counters: StitchCounters,
  log: Logger,
  fields: Record<string, unknown>,
  connectorGone: () => boolean,
): Promise<StitchCounters> {
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
        log.info({ ...fields, reason, code: connector.rstCode }, 'connector side reset; resetting agent side');
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
