import { createHash } from 'node:crypto';
import net from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { splice, type SpliceResult } from '../../src/protocol/splice.js';
import { nextTurn, recordWrites } from '../helpers/write-turns.js';
import { Reader, connect, memoryLogger, startTcp, waitFor, type Backend } from './helpers.js';

/** A real client ↔ proxy TCP pair: `client` is the application, `local` the accepted socket. */
async function socketPair(): Promise<{ client: net.Socket; local: net.Socket; close: () => Promise<void> }> {
  let accepted: (s: net.Socket) => void = () => undefined;
  const got = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => accepted(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = await connect((server.address() as net.AddressInfo).port);
  const local = await got;
  const close = (): Promise<void> => {
    client.destroy();
    local.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { client, local, close };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

describe('splice', () => {
  it('writes the head first, counts bytes and settles as closed after both FINs', async () => {
    const { client, local, close } = await socketPair();
    cleanups.push(close);
    const remote = new PassThrough(); // loops client bytes straight back, like an echo tunnel
    const s = splice(local, remote, memoryLogger().log, { head: Buffer.from('head|') });
    const reader = new Reader(client);
    client.end('body');
    expect((await reader.end()).toString()).toBe('head|body');
    const r: SpliceResult = await s.done;
    expect(r).toEqual({ bytesUp: 9, bytesDown: 9, outcome: 'closed' });
  });

  it('a remote destroyed without error (no FIN) still resets the client', async () => {
    const { client, local, close } = await socketPair();
    cleanups.push(close);
    const remote = new PassThrough();
    const s = splice(local, remote, memoryLogger().log);
    const reader = new Reader(client);
    client.write('abc');
    await reader.read(3);
    remote.destroy();
    await expect(reader.end()).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect((await s.done).outcome).toBe('remote-reset');
  });

  it('abort() resets the client and destroys the remote with the given error', async () => {
    const { client, local, close } = await socketPair();
    cleanups.push(close);
    const remote = new PassThrough();
    const s = splice(local, remote, memoryLogger().log);
    const reader = new Reader(client);
    const err = new Error('policy revoked');
    s.abort(err);
    await expect(reader.end()).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(remote.errored).toBe(err);
    expect((await s.done).outcome).toBe('aborted');
  });

  it("writes a turn's first tunnel chunk to the client at once and the rest of the turn in one writev", async () => {
    const { client, local, close } = await socketPair();
    cleanups.push(close);
    const remote = new Duplex({ read: () => undefined, write: (_c, _e, cb) => cb() });
    splice(local, remote, memoryLogger().log);
    await nextTurn(); // the splice resumes its streams on the next tick
    const writes = recordWrites(local);
    const reader = new Reader(client);
    for (const part of ['first', '|second', '|third']) remote.push(part);
    // The first chunk did not wait for the end of the turn: a response's first bytes go out
    // as soon as they arrive.
    expect(writes).toEqual([1]);
    await nextTurn();
    expect(writes).toEqual([1, 2]);
    expect((await reader.read(18)).toString()).toBe('first|second|third');
  });

  it('applies backpressure: a stalled tunnel stalls the client instead of filling memory', async () => {
    const { client, local, close } = await socketPair();
    cleanups.push(close);
    let sinkSocket: net.Socket | undefined;
    const sink: Backend = await startTcp((s) => {
      s.pause(); // never reads until told to
      sinkSocket = s;
    });
    cleanups.push(sink.close);
    const remote = await connect(sink.port);
    const s = splice(local, remote, memoryLogger().log);
    let maxBuffered = 0;
    local.on('data', () => (maxBuffered = Math.max(maxBuffered, remote.writableLength + local.readableLength)));

    const total = 64 * 1024 * 1024;
    const data = Buffer.alloc(total, 7);
    client.end(data);
    // Kernel buffers hold a few MiB at most; if the splice buffered without bound the client's
    // own queue would drain to nothing instead.
    await waitFor(() => client.writableLength >= total / 2, 'backpressure to reach the client', 10_000);
    expect(s.counters.bytesUp).toBeLessThan(total / 2);
    expect(maxBuffered).toBeLessThan(1024 * 1024);

    const hash = createHash('sha256');
    let received = 0;
    const drained = new Promise<void>((resolve) => {
      sinkSocket?.on('data', (c: Buffer) => {
        hash.update(c);
        received += c.length;
      });
      sinkSocket?.once('end', () => resolve());
    });
    sinkSocket?.resume();
    await drained;
    expect(received).toBe(total);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(maxBuffered).toBeLessThan(1024 * 1024);
    client.destroy();
  });
});
