import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ClientHttp2Session, ClientHttp2Stream, Http2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInfraCa, createTenantPki, issueFromCsr, issueServerCertificate } from '../../src/edge/ca/index.js';
import type { ControlMessage } from '../../src/protocol/control-messages.js';
import { PROTO_HEADER, REASON_HEADER, TAG_HEADER, type MicrotunnelOpen } from '../../src/protocol/microtunnel-open.js';
import { createCsr, generateKeyPair } from '../../src/protocol/pki.js';
import { ZTunnelSession, type IncomingMicrotunnel, type OutgoingMicrotunnel } from '../../src/protocol/session.js';
import { CONTROL_PATH } from '../../src/protocol/version.js';
import { closeServer, listen, readAll, sessionOptions, sessionPair, tcpPair, tick, tlsPair, type SessionPair, type TlsMaterial } from './helpers.js';
import { byteMutation, mutate, type ByteMutation } from '../helpers/byte-mutations.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const health: ControlMessage = { type: 'health', activeMicrotunnels: 0, bytesIn: 1, bytesOut: 2 };

/** Sends a control message one way and waits for it: the session's control channel still works. */
async function controlStillWorks(from: ZTunnelSession, to: ZTunnelSession): Promise<void> {
  const got = once(to, 'message');
  from.send(health);
  expect((await got)[0]).toEqual(health);
}

async function tlsMaterial(): Promise<TlsMaterial> {
  const [tenant, infra] = await Promise.all([createTenantPki('demo'), createInfraCa()]);
  const edge = await issueServerCertificate(infra, { name: 'edge-1', dnsNames: ['edge.zcc.test'] });
  const keys = await generateKeyPair();
  const identity = { kind: 'client', tenant: 'demo', user: 'alice@demo.internal', device: 'dev-1', fingerprint: 'ab'.repeat(32) } as const;
  const csr = await createCsr({ keys, subject: { commonName: 'device' }, identity });
  const leaf = await issueFromCsr(tenant.client, csr, { identity, validityDays: 1 });
  return {
    server: { keyPem: edge.keyPem, certPem: edge.chainPem },
    client: { keyPem: keys.privateKeyPem, certPem: leaf.chainPem },
    clientRoots: [tenant.root.certPem],
    serverRoot: infra.certPem,
    servername: 'edge.zcc.test',
  };
}

// ---------------------------------------------------------------------------------------------
// Model of one run: K good microtunnels with payloads both ways, some bad opens, and schedules.

/** Mostly small chunks, sometimes one larger than a stream window's worth in a few writes. */
const chunk = fc.oneof(
  { weight: 12, arbitrary: fc.uint8Array({ maxLength: 3000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 64 << 10, max: 400 << 10 }).map((n) => new Uint8Array(n).map((_, i) => (i * 131 + n) & 0xff)) },
);
const tunnel = fc.record({
  up: fc.array(chunk, { maxLength: 5 }),
  down: fc.array(chunk, { maxLength: 5 }),
});

type BadKind =
  | { kind: 'tag'; value: string | null }
  | { kind: 'authority'; value: string }
  | { kind: 'proto'; value: string | null }
  | { kind: 'method' }
  | { kind: 'second-control' }
  | { kind: 'duplicate'; of: number };

const badOpen: fc.Arbitrary<BadKind> = fc.oneof(
  fc.record({ kind: fc.constant('tag' as const), value: fc.constantFrom(null, '', '0', '4294967296', '-5', 'abc', '12a', '99999999999') }),
  fc.record({ kind: fc.constant('authority' as const), value: fc.constantFrom('noport.apps.test', 'a..b:80', 'x.test:0', 'x.test:70000', '-x.test:1', ':443', 'x_.test!:8') }),
  fc.record({ kind: fc.constant('proto' as const), value: fc.constantFrom(null, 'sctp', 'TCP', '') }),
  fc.constant({ kind: 'method' as const }),
  fc.constant({ kind: 'second-control' as const }),
  fc.record({ kind: fc.constant('duplicate' as const), of: fc.nat() }),
);

const scenario = fc.record({
  tunnels: fc.array(tunnel, { minLength: 1, maxLength: 20 }),
  bad: fc.array(fc.record({ open: badOpen, endStream: fc.boolean(), junk: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 6 }),
  /** Drives every interleaving choice: which queue goes next and whether to yield to I/O first. */
  picks: fc.array(fc.nat(), { minLength: 0, maxLength: 200 }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer S> ? S : never;

/**
 * Runs queues of async steps in an interleaving chosen by `picks`: each pick selects the next
 * non-empty queue and whether to let the event loop turn before the step. Per-queue order holds.
 */
async function interleave(queues: Array<Array<() => void>>, picks: readonly number[]): Promise<void> {
  const live = queues.map((q) => [...q]).filter((q) => q.length > 0);
  let n = 0;
  while (live.length > 0) {
    const pick = picks[n % Math.max(picks.length, 1)] ?? n;
    n++;
    const i = pick % live.length;
    const q = live[i] as Array<() => void>;
    if ((pick >> 5) % 3 === 0) await tick();
    (q.shift() as () => void)();
    if (q.length === 0) live.splice(i, 1);
  }
}

/**
 * Zero-length chunks are left out: on Node 20 a zero-length write into an HTTP/2 stream can leave
 * the write before it without its callback, so the stream never finishes and never closes (this
 * test hung on it: seed -2034786252, path "25"; reproduced every time). zcc never writes one:
 * splice, stitch and the early-data path forward 'data' chunks, which are never empty, and the
 * control and datagram framings always carry a header.
 */
function writeSteps(stream: Http2Stream, chunks: readonly Uint8Array[]): Array<() => void> {
  return [...chunks.filter((c) => c.length > 0).map((c) => () => void stream.write(c)), () => void stream.end()];
}

const hostOf = (i: number): string => `t${i}.apps.test`;

function badHeaders(b: BadKind, goodTags: readonly number[]): { headers: OutgoingHttpHeaders; status: number; reason: string } {
  const base: OutgoingHttpHeaders = { ':method': 'CONNECT', ':authority': 'bad.apps.test:443', [TAG_HEADER]: '7', [PROTO_HEADER]: 'tcp' };
  const bad = { status: 400, reason: 'bad-open' };
  switch (b.kind) {
    case 'tag': {
      const headers = { ...base };
      if (b.value === null) delete headers[TAG_HEADER];
      else headers[TAG_HEADER] = b.value;
      return { headers, ...bad };
    }
    case 'authority':
      return { headers: { ...base, ':authority': b.value }, ...bad };
    case 'proto': {
      const headers = { ...base };
      if (b.value === null) delete headers[PROTO_HEADER];
      else headers[PROTO_HEADER] = b.value;
      return { headers, ...bad };
    }
    case 'method':
      return { headers: { ':method': 'GET', ':path': '/not-a-tunnel' }, ...bad };
    case 'second-control':
      return { headers: { ':method': 'POST', ':path': CONTROL_PATH }, ...bad };
    case 'duplicate':
      return { headers: { ...base, [TAG_HEADER]: String(goodTags[b.of % goodTags.length]) }, status: 409, reason: 'duplicate-tag' };
  }
}

interface ServerSide {
  open: MicrotunnelOpen;
  stream: Http2Stream;
  received: Promise<Buffer>;
  closed: Promise<void>;
}

/** Settles on the stream's 'close', however it ends; attach before anything can close it. */
const closeOfStream = (stream: Http2Stream): Promise<void> => new Promise((resolve) => stream.once('close', () => resolve()));

/** Rejects if `run` has not settled within 15 s, naming what was still pending. */
function withinDeadline(run: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('scenario did not finish within 15 s (a microtunnel never closed?)')), 15_000);
  });
  return Promise.race([run, deadline]).finally(() => clearTimeout(timer));
}

async function runScenario(pair: SessionPair, s: Scenario): Promise<void> {
  const { client, server } = pair;
  const K = s.tunnels.length;
  const B = s.bad.length;

  // Server: accept every good open, remember which tunnel (by host) it claims to be.
  const accepted = new Map<number, ServerSide>();
  let allAccepted!: () => void;
  const everyoneAccepted = new Promise<void>((r) => (allAccepted = r));
  let streamsSeen = 0;
  let allSeen!: () => void;
  const everyStreamSeen = new Promise<void>((r) => (allSeen = r));
  const onStream = (): void => {
    if (++streamsSeen === K + B) allSeen();
  };
  const onMicrotunnel = (m: IncomingMicrotunnel): void => {
    const i = Number(/^t(\d+)\./.exec(m.open.host)?.[1]);
    expect(accepted.has(i)).toBe(false);
    const stream = m.accept();
    accepted.set(i, { open: m.open, stream, received: readAll(stream), closed: closeOfStream(stream) });
    if (accepted.size === K) allAccepted();
  };
  server.h2.on('stream', onStream);
  server.on('microtunnel', onMicrotunnel);
  try {
    // Client: open the good tunnels and the bad opens in an interleaved order (good 0 first, so
    // a duplicate always has a live tag to collide with).
    const good: OutgoingMicrotunnel[] = [];
    const goodClosed: Array<Promise<void>> = [];
    const bad: Array<{ req: ClientHttp2Stream; response: Promise<IncomingHttpHeaders>; closed: Promise<void>; status: number; reason: string }> = [];
    const openGood = (i: number) => () => {
      const g = client.openMicrotunnel({ proto: 'tcp', host: hostOf(i), port: 1000 + i });
      good[i] = g;
      goodClosed[i] = closeOfStream(g.stream);
    };
    const openBad = (j: number) => () => {
      const spec = s.bad[j] as Scenario['bad'][number];
      const { headers, status, reason } = badHeaders(spec.open, good.filter(Boolean).map((g) => g.tag));
      const req = (client.h2 as ClientHttp2Session).request(headers, { endStream: spec.endStream });
      req.on('error', () => undefined);
      const closed = closeOfStream(req);
      const response = once(req, 'response').then(([h]) => h as IncomingHttpHeaders);
      if (!spec.endStream) {
        req.write(spec.junk);
        req.end();
      }
      req.resume();
      bad.push({ req, response, closed, status, reason });
    };
    const opens = s.tunnels.map((_, i) => openGood(i));
    const first = opens.shift() as () => void;
    first();
    await interleave([opens, s.bad.map((_, j) => openBad(j))], s.picks);

    // Client writes its payloads (and half-closes) in a random interleaving, before or after
    // the far end accepted: data written at once must flow once established.
    const downloads = good.map((g) => readAll(g.stream));
    await interleave(
      good.map((g, i) => writeSteps(g.stream, (s.tunnels[i] as Scenario['tunnels'][number]).up)),
      s.picks.map((p) => p * 7 + 3),
    );

    // The server answers only once it has seen every stream, so every good tunnel is still open
    // (its tag in use) when a duplicate arrives.
    await Promise.all([everyoneAccepted, everyStreamSeen]);
    await interleave(
      s.tunnels.map((t, i) => writeSteps((accepted.get(i) as ServerSide).stream, t.down)),
      s.picks.map((p) => p * 13 + 5),
    );

    // Bad opens: refused one by one, with status and reason.
    for (const b of bad) {
      const h = await b.response;
      expect([h[':status'], h[REASON_HEADER]]).toEqual([b.status, b.reason]);
    }

    // Good tunnels: each end got exactly its own bytes, under the tag the opener chose.
    await Promise.all(good.map((g) => g.established));
    const ups = await Promise.all(s.tunnels.map((_, i) => (accepted.get(i) as ServerSide).received));
    const downs = await Promise.all(downloads);
    s.tunnels.forEach((t, i) => {
      const side = accepted.get(i) as ServerSide;
      const g = good[i] as OutgoingMicrotunnel;
      expect(side.open).toEqual({ tag: g.tag, proto: 'tcp', host: hostOf(i), port: 1000 + i });
      const up = ups[i] as Buffer;
      const down = downs[i] as Buffer;
      const wantUp = Buffer.concat(t.up);
      const wantDown = Buffer.concat(t.down);
      // Lengths first: a cheap, readable failure before the hashes.
      expect([i, up.length, down.length]).toEqual([i, wantUp.length, wantDown.length]);
      expect([i, sha(up), sha(down)]).toEqual([i, sha(wantUp), sha(wantDown)]);
    });

    // Everything closes, the tag sets drain, and the session is still up.
    await Promise.all([...goodClosed, ...[...accepted.values()].map((a) => a.closed), ...bad.map((b) => b.closed)]);
    expect(client.openMicrotunnels).toBe(0);
    expect(server.openMicrotunnels).toBe(0);
    expect(client.closed || server.closed).toBe(false);
  } finally {
    server.h2.off('stream', onStream);
    server.off('microtunnel', onMicrotunnel);
  }
}

describe('ZTunnelSession multiplexing (property)', () => {
  let material: TlsMaterial;
  let pair: SessionPair;

  beforeAll(async () => {
    material = await tlsMaterial();
    pair = await sessionPair(await tlsPair(material));
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('negotiates TLS 1.3 with the preferred suite, AES-128-GCM', () => {
    expect(pair.client.socket.getProtocol()).toBe('TLSv1.3');
    expect(pair.client.socket.getCipher().standardName).toBe('TLS_AES_128_GCM_SHA256');
    expect(pair.server.socket.getCipher().standardName).toBe('TLS_AES_128_GCM_SHA256');
  });

  it('over mutual TLS: every microtunnel gets exactly its own bytes; only bad opens are refused', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, (s) => withinDeadline(runScenario(pair, s))),
      // A run takes milliseconds; one that hangs fails on its own deadline, so fast-check reports
      // its seed and scenario instead of vitest timing the whole test out (that is how the
      // zero-length write hang, see writeSteps, was found). No shrinking: each shrink step of a
      // hang would wait out the deadline again.
      { numRuns: 30, endOnFailure: true },
    );
    await controlStillWorks(pair.client, pair.server);
    await controlStillWorks(pair.server, pair.client);
  });

  it('over plain TCP, a fresh session per run', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const tcp = await sessionPair(await tcpPair());
        try {
          await withinDeadline(runScenario(tcp, s));
          await controlStillWorks(tcp.client, tcp.server);
        } finally {
          await tcp.close();
        }
      }),
      { numRuns: 15, endOnFailure: true },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile bytes on one connection of a listener must not disturb another session on it.

interface Listener {
  port: number;
  /** Server-role sessions in accept order. */
  next(): Promise<ZTunnelSession>;
  close(): Promise<void>;
}

/**
 * Server-role sessions on a TCP listener. The first connection (the healthy peer) gets default
 * timers; later ones (the victims) short ones, because a session nghttp2 has terminated on a
 * connection error goes quiet without telling JS and only keepalive (or the drain watchdog,
 * when closing) tears it down.
 */
async function startListener(): Promise<Listener> {
  const queue: ZTunnelSession[] = [];
  const waiters: Array<(s: ZTunnelSession) => void> = [];
  const sessions = new Set<ZTunnelSession>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    const timers = accepted++ === 0 ? {} : { helloTimeoutMs: 2_000, keepaliveMs: 200, keepaliveTimeoutMs: 300 };
    const session = ZTunnelSession.server(socket as TLSSocket, sessionOptions(`listener ${socket.remotePort}`, 'edge', timers));
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    // An echo service with half-close: what a healthy client writes comes back, then the FIN.
    session.on('microtunnel', (m) => {
      const stream = m.accept();
      stream.on('error', () => undefined);
      stream.pipe(stream);
    });
    const waiter = waiters.shift();
    if (waiter) waiter(session);
    else queue.push(session);
  });
  const port = await listen(server);
  return {
    port,
    next: () => {
      const s = queue.shift();
      return s ? Promise.resolve(s) : new Promise((resolve) => waiters.push(resolve));
    },
    close: async () => {
      for (const s of sessions) s.destroy();
      await closeServer(server);
    },
  };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** An echo round trip over the healthy session, checked byte for byte. */
async function echoRoundTrip(session: ZTunnelSession, payload: Buffer): Promise<void> {
  const m = session.openMicrotunnel({ proto: 'tcp', host: 'echo.apps.test', port: 7 });
  const back = readAll(m.stream);
  m.stream.end(payload);
  await m.established;
  const got = await back;
  expect(got.length).toBe(payload.length);
  expect(got.equals(payload)).toBe(true);
}

describe('hostile bytes on a server-role session (property)', () => {
  let listener: Listener;
  let healthy: ZTunnelSession;
  let healthyServer: ZTunnelSession;
  /** Everything a well-behaved HTTP/2 client wrote in a whole session: preface to GOAWAY. */
  let recording: Buffer;

  beforeAll(async () => {
    listener = await startListener();
    healthy = ZTunnelSession.client((await connect(listener.port)) as TLSSocket, sessionOptions('healthy', 'agent'));
    healthyServer = await listener.next();
    await healthy.ready();

    // Record a real client's byte stream through a tapping proxy.
    const chunks: Buffer[] = [];
    const proxy = net.createServer((inbound) => {
      const outbound = net.connect(listener.port, '127.0.0.1');
      inbound.on('data', (c: Buffer) => {
        chunks.push(c);
        outbound.write(c);
      });
      inbound.on('end', () => outbound.end());
      outbound.pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    const proxyPort = await listen(proxy);
    const recorded = ZTunnelSession.client((await connect(proxyPort)) as TLSSocket, sessionOptions('recorded', 'agent'));
    const recordedServer = await listener.next();
    await recorded.ready();
    for (const [n, text] of [
      [1, 'first microtunnel'],
      [2, 'second microtunnel, a little longer'],
    ] as const) {
      await echoRoundTrip(recorded, Buffer.from(`${n}: ${text}`));
    }
    const got = once(recordedServer, 'message');
    recorded.send(health);
    await got;
    const gone = once(recordedServer, 'close');
    recorded.close();
    await gone;
    await closeServer(proxy);
    recording = Buffer.concat(chunks);
    expect(recording.subarray(0, 24).toString('latin1')).toBe('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  });

  afterAll(async () => {
    healthy?.destroy();
    await listener?.close();
  });

  const mutation = byteMutation({ duplicate: 200, delete: 40, splice: 40 });

  const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  const hostile = fc.oneof(
    // Pure noise, with or without a valid connection preface in front of it.
    fc.uint8Array({ maxLength: 600 }).map((b) => ({ kind: 'noise', bytes: Buffer.from(b) })),
    fc.uint8Array({ maxLength: 600 }).map((b) => ({ kind: 'preface+noise', bytes: Buffer.concat([PREFACE, Buffer.from(b)]) })),
    // A real client's bytes replayed with a few structural mutations.
    fc.array(mutation, { minLength: 1, maxLength: 5 }).map((ms) => ({ kind: 'mutated', ms })),
    // The same, unmutated, then noise: a session that was fine until it was not.
    fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => ({ kind: 'replay+noise', noise: Buffer.from(b) })),
  );

  it('never crashes the process; the session is torn down or survives, and the healthy one keeps working', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostile, fc.array(fc.nat(), { maxLength: 8 }), fc.uint8Array({ minLength: 1, maxLength: 20_000 }), async (h, cuts, payload) => {
        const bytes =
          h.kind === 'mutated'
            ? (h as { ms: ByteMutation[] }).ms.reduce(mutate, recording)
            : h.kind === 'replay+noise'
              ? Buffer.concat([recording.subarray(0, recording.length - 17), (h as { noise: Buffer }).noise])
              : (h as { bytes: Buffer }).bytes;
        const raw = await connect(listener.port);
        raw.resume(); // drain whatever the server answers
        const victim = await listener.next();
        const victimClosed = victim.closed ? Promise.resolve() : once(victim, 'close');
        // Healthy traffic runs at the same time as the attack.
        const healthyTraffic = echoRoundTrip(healthy, Buffer.from(payload));
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        let from = 0;
        for (const p of [...points, bytes.length]) {
          if (raw.destroyed) break;
          raw.write(bytes.subarray(from, p));
          from = p;
          await tick();
        }
        // Our FIN ends the connection in every case: the victim session must go away.
        raw.end();
        await Promise.all([victimClosed, healthyTraffic]);
        expect(healthy.closed).toBe(false);
        expect(healthyServer.closed).toBe(false);
        n++;
      }),
      { numRuns: 120 },
    );
    expect(n).toBe(120);
    await controlStillWorks(healthy, healthyServer);
    await echoRoundTrip(healthy, Buffer.from('still here'));
  });
});
