// The parts of the kernel intercept that need no root: datagram framing, the nft ruleset text,
// port ranges, idle timers and the journal.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { appPorts, portIn } from '../../src/agent/intercept/kernel/app-ports.js';
import { JOURNAL_FILE, processAlive, readJournal, removeJournal, writeJournal, type Journal } from '../../src/agent/intercept/kernel/journal.js';
import { buildRuleset, gateCommands, mergeRanges } from '../../src/agent/intercept/kernel/nft-ruleset.js';
import { IdleTimer, resolveTimeouts } from '../../src/agent/intercept/kernel/timeouts.js';
import { DatagramChannel, DatagramDecoder, encodeDatagram, MAX_DATAGRAM } from '../../src/protocol/datagram.js';
import { AppSegment } from '../../src/protocol/segments.js';

describe('datagram framing (protocol.md §5.5)', () => {
  it('round-trips datagrams of 0, 1 and 65 535 bytes however the stream is cut', () => {
    const grams = [Buffer.alloc(0), Buffer.from([7]), Buffer.alloc(MAX_DATAGRAM, 0xab), Buffer.from('tail')];
    const wire = Buffer.concat(grams.map(encodeDatagram));
    for (const cut of [1, 3, 1000, wire.length]) {
      const d = new DatagramDecoder();
      const out: Buffer[] = [];
      for (let i = 0; i < wire.length; i += cut) out.push(...d.push(wire.subarray(i, i + cut)));
      // Byte-wise comparison: a deep equal over 64 KiB buffers takes seconds.
      expect(out.map((b) => b.length)).toEqual(grams.map((b) => b.length));
      expect(out.every((b, i) => b.equals(grams[i]!))).toBe(true);
      expect(d.partial).toBe(0);
    }
  });

  it('refuses a datagram longer than a u16 can say', () => {
    expect(() => encodeDatagram(Buffer.alloc(MAX_DATAGRAM + 1))).toThrow(RangeError);
  });

  it('drops (and counts) datagrams past its queue limit instead of buffering without bound', () => {
    const stream = new PassThrough({ highWaterMark: 1 });
    const ch = new DatagramChannel(stream, 100);
    stream.pause();
    let accepted = 0;
    for (let i = 0; i < 10; i++) if (ch.send(Buffer.alloc(50))) accepted++;
    expect(accepted).toBeLessThan(10);
    expect(ch.dropped).toBe(10 - accepted);
  });

  it('reports a stream cut inside a datagram as an error', async () => {
    const stream = new PassThrough();
    const ch = new DatagramChannel(stream);
    const ended = new Promise<Error | undefined>((r) => ch.once('end', r));
    stream.end(encodeDatagram(Buffer.from('abc')).subarray(0, 3));
    expect((await ended)?.message).toMatch(/inside a datagram/);
  });
});

describe('nft ruleset', () => {
  it('TPROXYs TCP and UDP in prerouting, drops foreign pool traffic, refuses ICMP echo', () => {
    const r = buildRuleset({ mode: 'tproxy', cidr: '100.64.0.0/10', tcpPort: 4000, udpPort: 4001 });
    expect(r).toContain('table inet zcc {');
    expect(r).toContain('ip daddr 100.64.0.0/10 meta l4proto tcp tproxy ip to 127.0.0.1:4000');
    expect(r).toContain('ip daddr 100.64.0.0/10 meta l4proto udp tproxy ip to 127.0.0.1:4001');
    expect(r).toContain('ip daddr 100.64.0.0/10 iif != "lo" drop');
    expect(r).toContain('icmp type echo-request reject with icmp type admin-prohibited');
    expect(r).not.toContain('redirect');
  });

  it('redirects TCP only in the fallback mode', () => {
    const r = buildRuleset({ mode: 'redirect', cidr: '10.99.0.0/16', tcpPort: 4000, udpPort: 4001 });
    expect(r).toContain('ip daddr 10.99.0.0/16 meta l4proto tcp redirect to :4000');
    expect(r).not.toContain('tproxy');
  });

  it('merges overlapping and adjacent ranges and writes one gate transaction', () => {
    expect(mergeRanges([{ from: 90, to: 100 }, { from: 80, to: 80 }, { from: 81, to: 85 }, { from: 95, to: 120 }])).toEqual([
      { from: 80, to: 85 },
      { from: 90, to: 120 },
    ]);
    const cmds = gateCommands([{ ip: '100.64.0.9', ports: { tcp: [{ from: 8000, to: 8100 }, { from: 22, to: 22 }], udp: [] } }], 30);
    expect(cmds).toBe('add element inet zcc allowed_tcp { 100.64.0.9 . 22, 100.64.0.9 . 8000-8100 }\nadd element inet zcc gated { 100.64.0.9 timeout 30s }\n');
  });

  it('replaces an IP\'s allowed ranges exactly (re-adding an element never refreshes it)', () => {
    const cmds = gateCommands([{ ip: '100.64.0.9', ports: { tcp: [{ from: 80, to: 80 }], udp: [{ from: 53, to: 53 }] }, previous: { tcp: [{ from: 8000, to: 8100 }], udp: [] } }], 30);
    expect(cmds.split('\n').filter(Boolean)).toEqual([
      'delete element inet zcc allowed_tcp { 100.64.0.9 . 8000-8100 }',
      'add element inet zcc allowed_tcp { 100.64.0.9 . 80 }',
      'add element inet zcc allowed_udp { 100.64.0.9 . 53 }',
      'add element inet zcc gated { 100.64.0.9 timeout 30s }',
    ]);
  });
});

describe('app ports', () => {
  const segs = [
    AppSegment.parse({ id: 'a', name: 'a', domains: ['*.corp.test'], tcpPorts: [{ from: 443, to: 443 }] }),
    AppSegment.parse({ id: 'b', name: 'b', domains: ['git.corp.test'], tcpPorts: [{ from: 22, to: 22 }], udpPorts: [{ from: 53, to: 53 }] }),
  ];
  it('unions the ranges of every segment whose domains match the name', () => {
    expect(appPorts(segs, 'git.corp.test', 'tcp')).toEqual([{ from: 443, to: 443 }, { from: 22, to: 22 }]);
    expect(portIn(appPorts(segs, 'wiki.corp.test', 'tcp'), 22)).toBe(false);
    expect(portIn(appPorts(segs, 'git.corp.test', 'udp'), 53)).toBe(true);
    expect(appPorts(segs, 'corp.test', 'tcp')).toEqual([]);
  });
  it('works a name out once per segment list and protocol (asked for every connection)', () => {
    const tcp = appPorts(segs, 'Git.Corp.Test.', 'tcp');
    expect(appPorts(segs, 'git.corp.test', 'tcp')).toBe(tcp);
    expect(appPorts(segs, 'git.corp.test', 'udp')).toEqual([{ from: 53, to: 53 }]);
    // Another list (a new segments revision) is worked out afresh.
    const next = [segs[1] as AppSegment];
    expect(appPorts(next, 'git.corp.test', 'tcp')).toEqual([{ from: 22, to: 22 }]);
    expect(appPorts(segs, 'git.corp.test', 'tcp')).toBe(tcp);
  });
});

describe('timeouts', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('defaults to seed 003: open TCP never, half-closed 6 min, UDP 60 s', () => {
    expect(resolveTimeouts()).toMatchObject({ tcpOpenIdleMs: 0, tcpHalfClosedIdleMs: 360_000, udpIdleMs: 60_000 });
    expect(() => resolveTimeouts({ udpIdleMs: -1 })).toThrow(RangeError);
  });

  it('fires only after a full idle period, counted from the last activity', () => {
    vi.useFakeTimers();
    const onIdle = vi.fn();
    const t = new IdleTimer(onIdle);
    t.setLimit(1000);
    vi.advanceTimersByTime(900);
    t.touch();
    vi.advanceTimersByTime(900);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(150);
    expect(onIdle).toHaveBeenCalledOnce();
  });

  it('never fires with limit 0, and switches limits (open → half-closed)', () => {
    vi.useFakeTimers();
    const onIdle = vi.fn();
    const t = new IdleTimer(onIdle);
    t.setLimit(0);
    vi.advanceTimersByTime(10_000_000);
    expect(onIdle).not.toHaveBeenCalled();
    t.setLimit(500);
    vi.advanceTimersByTime(501);
    expect(onIdle).toHaveBeenCalledOnce();
  });
});

describe('journal', () => {
  it('writes, reads back and removes the record of host changes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zcc-journal-'));
    try {
      expect(await readJournal(dir)).toBeUndefined();
      const j: Journal = { version: 1, pid: 4242, startedAt: new Date().toISOString(), mode: 'tproxy', cidr: '100.64.0.0/10', routeProto: 122, nftTable: 'inet zcc' };
      await writeJournal(dir, j);
      expect(await readJournal(dir)).toEqual(j);
      expect(JSON.parse(await readFile(join(dir, JOURNAL_FILE), 'utf8'))).toEqual(j);
      await removeJournal(dir);
      expect(await readJournal(dir)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tells a live previous owner from a dead one (and never counts itself)', () => {
    expect(processAlive(process.pid)).toBe(false);
    expect(processAlive(process.ppid)).toBe(true);
    expect(processAlive(2 ** 22 + 12345)).toBe(false);
  });
});
