import type { Http2Stream } from 'node:http2';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { forwardEarly } from '../../src/edge/broker/stitch.js';
import { nextTurn, recordWrites } from '../helpers/write-turns.js';

/** A stream end the test feeds by hand (its readable side) and that keeps what it is sent. */
function streamEnd(): { stream: Duplex; received: Buffer[] } {
  const received: Buffer[] = [];
  const stream = new Duplex({
    read: () => undefined,
    write: (c: Buffer, _e, cb) => {
      received.push(c);
      cb();
    },
    writev: (chunks, cb) => {
      for (const { chunk } of chunks) received.push(chunk as Buffer);
      cb();
    },
  });
  return { stream, received };
}

// The edge's forwarding between two microtunnels only uses the Duplex side of an HTTP/2 stream.
const asH2 = (d: Duplex): Http2Stream => d as unknown as Http2Stream;

describe('edge stitch: one direction within an event-loop turn', () => {
  it("writes the turn's first chunk at once and the rest of the turn in one writev", async () => {
    const agent = streamEnd();
    const connector = streamEnd();
    const counters = forwardEarly(asH2(agent.stream), asH2(connector.stream));
    const writes = recordWrites(connector.stream);
    await nextTurn(); // a 'data' listener starts the flow on the next tick
    for (const part of ['GET / HTTP/1.1\r\n', 'Host: a\r\n', '\r\n']) agent.stream.push(part);
    // HTTP/2 sends what reaches it in this turn; a first chunk corked to the end of the turn
    // would leave a whole turn later, which is on the path of every request's first byte.
    expect(writes).toEqual([1]);
    await nextTurn();
    expect(writes).toEqual([1, 2]);
    expect(Buffer.concat(connector.received).toString()).toBe('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(counters.up).toBe(27);
    // The next turn starts over: its first chunk is written at once again.
    agent.stream.push('more');
    expect(writes).toEqual([1, 2, 1]);
  });
});
