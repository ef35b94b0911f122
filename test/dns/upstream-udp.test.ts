import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpUpstreams } from '../../src/agent/dns/upstream-udp.js';
import { parseUpstream } from '../../src/agent/dns/upstream.js';
import { encodeQuery } from './helpers.js';

interface Seen {
  id: number;
  name: string;
  port: number;
}

/** A UDP upstream the test drives: every query is recorded, `reply` decides what goes back. */
async function fakeUpstream(reply: (q: Seen, send: (m: Buffer) => void) => void = () => undefined) {
  const sock = dgram.createSocket('udp4');
  const seen: Seen[] = [];
  sock.on('message', (msg, rinfo) => {
    const q = { id: msg.readUInt16BE(0), name: dnsPacket.decode(msg).questions?.[0]?.name ?? '', port: rinfo.port };
    seen.push(q);
    reply(q, (m) => sock.send(m, rinfo.port, rinfo.address));
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = sock.address().port;
  return {
    up: parseUpstream(`127.0.0.1:${port}`),
    seen,
    /** Send from the upstream's own address and port. */
    sendTo: (m: Buffer, to: number) => sock.send(m, to, '127.0.0.1'),
    close: () => sock.close(),
  };
}

/** An A answer to `q` (its ID and name unless told otherwise). */
function answer(q: Seen, data: string, opts: { id?: number; name?: string; query?: boolean } = {}): Buffer {
  const name = opts.name ?? q.name;
  return dnsPacket.encode({
    type: opts.query ? 'query' : 'response',
    id: opts.id ?? q.id,
    flags: opts.query ? 0 : dnsPacket.RECURSION_AVAILABLE,
    questions: [{ name, type: 'A', class: 'IN' }],
    answers: [{ type: 'A', name, ttl: 5, data }],
  });
}

const dataOf = (m: Buffer): string | undefined => {
  const a = dnsPacket.decode(m).answers?.[0];
  return a?.type === 'A' ? a.data : undefined;
};

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe('upstream UDP sockets: pooled, rotated, spoof-resistant', () => {
  it('each query gets a fresh random ID, unique while outstanding; answers in any order reach their own query', async () => {
    const f = await fakeUpstream();
    const pool = new UdpUpstreams({ queriesPerSocket: 1000 });
    cleanup.push(f.close, () => pool.close());
    const names = Array.from({ length: 60 }, (_, i) => `n${i}.test`);
    // Every query arrives with the client's ID 7: the pool replaces it.
    const pending = names.map((n) => pool.exchange(f.up, encodeQuery(n, 'A', { id: 7 }), 3_000));
    await expect.poll(() => f.seen.length).toBe(60);
    const ids = f.seen.map((q) => q.id);
    expect(new Set(ids).size).toBe(60);
    expect(ids.filter((id) => id === 7).length).toBeLessThan(2);
    // One socket, so one source port, for all of them.
    expect(new Set(f.seen.map((q) => q.port)).size).toBe(1);
    expect(pool.socketsOpened).toBe(1);
    for (const q of [...f.seen].reverse()) f.sendTo(answer(q, `192.0.2.${names.indexOf(q.name) + 1}`), q.port);
    const got = await Promise.all(pending);
    got.forEach((a, i) => {
      expect(dataOf(a.msg)).toBe(`192.0.2.${i + 1}`);
      expect(a.info.id).toBe(f.seen.find((q) => q.name === names[i])?.id);
    });
  });

  it('ignores forged datagrams (other source, wrong ID, other question, not a response) and takes the real answer after them', async () => {
    const f = await fakeUpstream();
    const pool = new UdpUpstreams();
    const attacker = dgram.createSocket('udp4');
    cleanup.push(f.close, () => pool.close(), () => attacker.close());
    const result = pool.exchange(f.up, encodeQuery('bank.test', 'A'), 3_000);
    await expect.poll(() => f.seen.length).toBe(1);
    const q = f.seen[0] as Seen;
    attacker.send(answer(q, '203.0.113.1'), q.port, '127.0.0.1'); // right ID and question, wrong source
    f.sendTo(answer(q, '203.0.113.2', { id: (q.id + 1) & 0xffff }), q.port);
    f.sendTo(answer(q, '203.0.113.3', { name: 'other.test' }), q.port);
    f.sendTo(answer(q, '203.0.113.4', { query: true }), q.port);
    f.sendTo(Buffer.from('garbage'), q.port);
    await wait(100);
    f.sendTo(answer(q, '192.0.2.1', { name: 'BANK.test' }), q.port); // case differs: same question (RFC 4343)
    expect(dataOf((await result).msg)).toBe('192.0.2.1');
  });

  it('moves to a new socket (a new source port) after queriesPerSocket queries and after socketMaxAgeMs', async () => {
    const f = await fakeUpstream((q, send) => send(answer(q, '192.0.2.1')));
    const pool = new UdpUpstreams({ queriesPerSocket: 3, socketMaxAgeMs: 200 });
    cleanup.push(f.close, () => pool.close());
    for (let i = 0; i < 7; i++) await pool.exchange(f.up, encodeQuery(`r${i}.test`, 'A'), 2_000);
    expect(pool.socketsOpened).toBe(3);
    const ports = f.seen.map((q) => q.port);
    expect(new Set(ports).size).toBe(3);
    expect(ports.slice(0, 3).every((p) => p === ports[0])).toBe(true);
    await wait(300);
    await pool.exchange(f.up, encodeQuery('late.test', 'A'), 2_000);
    expect(pool.socketsOpened).toBe(4);
    expect(new Set(f.seen.map((q) => q.port)).size).toBe(4);
  });

  it('a silent upstream: the exchange fails after its timeout; close() fails what is outstanding at once', async () => {
    const f = await fakeUpstream();
    const pool = new UdpUpstreams();
    cleanup.push(f.close, () => pool.close());
    const started = Date.now();
    await expect(pool.exchange(f.up, encodeQuery('slow.test', 'A'), 150)).rejects.toThrow(/no answer from 127\.0\.0\.1:\d+ within 150 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const stuck = pool.exchange(f.up, encodeQuery('stuck.test', 'A'), 10_000);
    await expect.poll(() => f.seen.length).toBe(2);
    pool.close();
    await expect(stuck).rejects.toThrow(/socket closed/);
    // Closed: no new socket for a late query, until opened again.
    await expect(pool.exchange(f.up, encodeQuery('late.test', 'A'), 10_000)).rejects.toThrow(/closed/);
    expect(pool.socketsOpened).toBe(1);
    pool.open();
    const again = pool.exchange(f.up, encodeQuery('again.test', 'A'), 150);
    await expect(again).rejects.toThrow(/no answer/);
    expect(pool.socketsOpened).toBe(2);
  });

  it('an upstream dropped from the list stops getting new sockets; its old one closes once done', async () => {
    const f = await fakeUpstream((q, send) => send(answer(q, '192.0.2.1')));
    const pool = new UdpUpstreams();
    cleanup.push(f.close, () => pool.close());
    await pool.exchange(f.up, encodeQuery('a.test', 'A'), 2_000);
    pool.retain([]);
    await pool.exchange(f.up, encodeQuery('b.test', 'A'), 2_000);
    expect(pool.socketsOpened).toBe(2);
    expect(f.seen[0]?.port).not.toBe(f.seen[1]?.port);
  });
});
