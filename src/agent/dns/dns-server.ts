import dgram from 'node:dgram';
import net from 'node:net';
import { silentLogger, type Logger } from '../../common/log.js';
import type { SyntheticPool } from '../ipam/synthetic-pool.js';
import { AppAnswers, type AppLookup } from './app-answers.js';
import { AnswerCache } from './dns-cache.js';
import { DnsConfig, type DnsConfigInput } from './dns-config.js';
import { serveTcpConnection } from './dns-tcp.js';
import { Forwarder, type ForwarderStats, type Transport } from './forwarder.js';
import { HotAnswers } from './hot-answers.js';
import { literalLookup } from './upstream-udp.js';
import { RateLimiter } from './rate-limit.js';
import { ReachabilityCache, type ReachabilityCheck } from './reachability-cache.js';
import { formatHostPort, parseUpstream } from './upstream.js';
import { buildReply, headerOnlyReply, truncatedReply } from './wire-build.js';
import { FLAG_QR, HEADER_LEN, parseQuery, RCODE, WireError, type Query } from './wire.js';

/**
 * The agent's DNS server on UDP and TCP: app names get synthetic answers (app-answers.ts),
 * everything else goes to the previous resolvers (forwarder.ts). This file owns the sockets,
 * the per-client rate bound, input validation and the counters.
 *
 * Every received message ends in exactly one outcome counter, so after traffic settles
 * queries = answeredApp + nxdomain + forwarded + formerr + notimp + servfail + dropped + rateLimited.
 * "nxdomain" counts the agent's own NXDOMAINs; upstream answers of any rcode are "forwarded".
 */

export interface DnsServerOptions extends DnsConfigInput {
  pool: SyntheticPool;
  /** Owner of an app name (tenant-router's routeName), undefined when no segment matches. */
  appFor: AppLookup;
  /** Asks the edge whether the app is reachable through its connectors. */
  reachability: ReachabilityCheck;
  logger?: Logger;
  /** Clock in milliseconds (caches, rate limiter), for tests. */
  now?: () => number;
}

export interface DnsCounters {
  queries: number;
  answeredApp: number;
  forwarded: number;
  formerr: number;
  notimp: number;
  dropped: number;
  servfail: number;
  nxdomain: number;
  rateLimited: number;
}

export interface DnsStats extends DnsCounters {
  forwarder: ForwarderStats;
  reachabilityCalls: number;
  cachedAnswers: number;
  /** App answers remembered for reuse (hot-answers.ts), and replies sent from them. */
  hotAnswers: number;
  hotHits: number;
}

export interface BoundAddress {
  address: string;
  port: number;
}

const MIN_UDP_PAYLOAD = 512;
/** Largest reply sent over UDP whatever the client advertises: bigger risks IP fragmentation. */
const MAX_UDP_PAYLOAD = 4096;
/** App answers kept for reuse; a few hundred bytes each. Beyond it the oldest goes. */
const HOT_ENTRIES = 10_000;
/** front(): the message needs the full, asynchronous path. */
const FULL_PATH = Symbol('full path');

export class DnsServer {
  readonly config: DnsConfig;
  private readonly counters: DnsCounters = {
    queries: 0, answeredApp: 0, forwarded: 0, formerr: 0, notimp: 0, dropped: 0, servfail: 0, nxdomain: 0, rateLimited: 0,
  };
  private readonly log: Logger;
  private readonly app: AppAnswers;
  private readonly forwarder: Forwarder;
  private readonly reach: ReachabilityCache;
  private readonly answers: AnswerCache;
  private readonly hot: HotAnswers;
  private readonly limiter: RateLimiter | undefined;
  private readonly tcpSockets = new Set<net.Socket>();
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private closed = false;

  constructor(options: DnsServerOptions) {
    const { pool, appFor, reachability, logger, now: clock, ...config } = options;
    this.config = DnsConfig.parse(config);
    const c = this.config;
    const now = clock ?? Date.now;
    this.log = logger ?? silentLogger;
    this.reach = new ReachabilityCache({ check: reachability, now, ...c.reachabilityCache });
    this.app = new AppAnswers({ pool, appFor, reachability: this.reach, ttlSec: c.appTtlSec, logger: this.log, ...this.searchOf(c) });
    this.hot = new HotAnswers(HOT_ENTRIES, (t) => this.app.stillAnswers(t));
    this.answers = new AnswerCache({ ...c.cache, now });
    this.forwarder = new Forwarder({ upstreams: c.upstreams, cache: this.answers, logger: this.log, ...c.upstream });
    this.limiter = c.rateLimit === false ? undefined : new RateLimiter({ ...c.rateLimit, now });
  }

  /** Bind UDP and TCP on the same port; resolves with the addresses actually bound. */
  async start(): Promise<{ udp: BoundAddress; tcp: BoundAddress }> {
    const { host, port } = this.config;
    // With port 0 the UDP port is chosen first and TCP asked for the same one, which someone
    // else may hold; a few fresh tries make that race harmless.
    for (let attempt = 0; ; attempt++) {
      this.closed = false;
      this.forwarder.open();
      const udp = await this.bindUdp(host, port);
      try {
        const tcp = await this.bindTcp(host, udp.port);
        this.refuseLoops(host, udp.port);
        return { udp, tcp };
      } catch (err) {
        await this.close();
        const retry = port === 0 && attempt < 5 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (!retry) throw err;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.forwarder.close();
    for (const s of this.tcpSockets) s.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  stats(): DnsStats {
    return {
      ...this.counters,
      forwarder: { ...this.forwarder.stats },
      reachabilityCalls: this.reach.calls,
      cachedAnswers: this.answers.size,
      hotAnswers: this.hot.size,
      hotHits: this.hot.hits,
    };
  }

  /** New upstream resolvers (network change); drops forwarded answers cached from the old ones. */
  setUpstreams(list: readonly string[]): void {
    this.forwarder.setUpstreams(list);
  }

  setSearch(s: { searchDomains: readonly string[]; domainValidation: boolean; ndots?: number }): void {
    this.app.setSearch({ ndots: this.config.ndots, ...s });
    this.hot.clear();
  }

  /** Forget reachability verdicts and cached answers, e.g. after reconnecting to the edge. */
  flushCaches(): void {
    this.reach.clear();
    this.answers.clear();
    this.hot.clear();
  }

  /**
   * One message in, at most one reply out (undefined: send nothing). Never throws: a bug in
   * one query's handling becomes SERVFAIL for that query only.
   */
  handle(raw: Buffer, transport: Transport, client: string): Promise<Buffer | undefined> {
    const early = this.front(raw, transport, client);
    return early === FULL_PATH ? this.full(raw, transport) : Promise.resolve(early);
  }

  /**
   * What is decided synchronously: counting, the rate bound, messages dropped or refused on
   * their header alone, and (UDP) app answers reused from the hot cache. FULL_PATH for the rest.
   */
  private front(raw: Buffer, transport: Transport, client: string): Buffer | undefined | typeof FULL_PATH {
    const c = this.counters;
    c.queries += 1;
    if (this.limiter && !this.limiter.allow(client)) {
      c.rateLimited += 1;
      // UDP: silence, since answering a flood (possibly from a spoofed source) only doubles it.
      return transport === 'tcp' && raw.length >= HEADER_LEN ? headerOnlyReply(raw, RCODE.REFUSED) : undefined;
    }
    const tooBig = transport === 'udp' && raw.length > this.config.maxUdpQueryBytes;
    // Shorter than a header, or a response (answering it could start a loop between servers).
    if (raw.length < HEADER_LEN || tooBig || (raw.readUInt16BE(2) & FLAG_QR) !== 0) {
      c.dropped += 1;
      return undefined;
    }
    if (((raw.readUInt16BE(2) >> 11) & 0xf) !== 0) {
      c.notimp += 1;
      return headerOnlyReply(raw, RCODE.NOTIMP);
    }
    if (transport === 'udp') {
      let reply: Buffer | undefined;
      try {
        reply = this.hot.answer(raw);
      } catch (err) {
        // Only a bug gets here; the full path then answers (or fails) this query as usual.
        this.log.debug({ err: String(err) }, 'dns: hot path failed');
      }
      if (reply) {
        c.answeredApp += 1;
        return reply;
      }
    }
    return FULL_PATH;
  }

  private async full(raw: Buffer, transport: Transport): Promise<Buffer | undefined> {
    const c = this.counters;
    let q: Query;
    try {
      q = parseQuery(raw);
    } catch (err) {
      // Whatever the parser tripped on, the bytes are not a query we can work with.
      if (!(err instanceof WireError)) this.log.debug({ err: String(err) }, 'dns: unexpected parse failure');
      c.formerr += 1;
      return headerOnlyReply(raw, RCODE.FORMERR);
    }
    try {
      return await this.resolve(q, raw, transport);
    } catch (err) {
      this.log.debug({ qname: q.qname, qtype: q.qtype, err: String(err) }, 'dns: query failed');
      c.servfail += 1;
      return buildReply(q, RCODE.SERVFAIL);
    }
  }

  private async resolve(q: Query, raw: Buffer, transport: Transport): Promise<Buffer> {
    const decision = await this.app.answer(q);
    if (decision.kind === 'reply') {
      const key = decision.outcome === 'app' ? 'answeredApp' : decision.outcome;
      this.counters[key] += 1;
      if (transport === 'tcp') return decision.msg;
      const reply = this.fitUdp(q, decision.msg);
      // Only an answer sent whole is remembered (and the hot path re-checks the size).
      if (decision.hot && reply === decision.msg) this.hot.remember(raw, reply, decision.hot);
      return reply;
    }
    const reply = await this.forwarder.resolve(q, raw, transport);
    this.counters.forwarded += 1;
    return transport === 'udp' ? this.fitUdp(q, reply) : reply;
  }

  /** A UDP reply must fit the client's buffer: 512 without EDNS (RFC 1035), else its OPT size. */
  private fitUdp(q: Query, reply: Buffer): Buffer {
    const limit = q.edns ? Math.min(Math.max(q.edns.udpSize, MIN_UDP_PAYLOAD), MAX_UDP_PAYLOAD) : MIN_UDP_PAYLOAD;
    return reply.length <= limit ? reply : truncatedReply(q, reply);
  }

  private searchOf(c: DnsConfig): { searchDomains: string[]; domainValidation: boolean; ndots: number } {
    return { searchDomains: c.searchDomains, domainValidation: c.domainValidation, ndots: c.ndots };
  }

  /** An upstream that is this server itself would bounce every forwarded query forever. */
  private refuseLoops(host: string, port: number): void {
    const self = formatHostPort(host, port);
    const loop = this.config.upstreams.map(parseUpstream).find((u) => u.label === self);
    if (loop) throw new Error(`dns upstream ${loop.label} is this server itself`);
  }

  private bindUdp(host: string, port: number): Promise<BoundAddress> {
    return new Promise((resolve, reject) => {
      // Every address this socket sees is an IP literal (the validated listen address, the
      // source of each query), for which dns.lookup only defers to the next tick per reply.
      const sock = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', lookup: literalLookup });
      sock.once('error', reject);
      sock.bind(port, host, () => {
        sock.off('error', reject);
        // After binding, socket errors (ICMP unreachable on send, mostly; sends have no
        // callback of their own) must not crash the agent.
        sock.on('error', (err) => this.log.debug({ err: String(err) }, 'dns: udp socket error'));
        sock.on('message', (msg, rinfo) => this.onUdp(sock, msg, rinfo));
        this.udp = sock;
        const a = sock.address();
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  private onUdp(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const early = this.front(msg, 'udp', rinfo.address);
    if (early !== FULL_PATH) {
      if (early) this.sendUdp(sock, early, rinfo);
      return;
    }
    this.full(msg, 'udp')
      .then((reply) => {
        if (reply) this.sendUdp(sock, reply, rinfo);
      })
      .catch((err: unknown) => this.log.error({ err: String(err) }, 'dns: udp handler failed'));
  }

  private sendUdp(sock: dgram.Socket, reply: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed || this.udp !== sock) return;
    // No callback: a failed send is reported through the socket's 'error' listener, and a
    // callback would cost a closure and a nextTick per reply.
    sock.send(reply, rinfo.port, rinfo.address);
  }

  private bindTcp(host: string, port: number): Promise<BoundAddress> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.onTcp(socket));
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.warn({ err: String(err) }, 'dns: tcp server error'));
        this.tcp = server;
        const a = server.address() as net.AddressInfo;
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  private onTcp(socket: net.Socket): void {
    if (this.closed || this.tcpSockets.size >= this.config.tcp.maxConnections) {
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.tcpSockets.add(socket);
    socket.on('close', () => this.tcpSockets.delete(socket));
    const client = socket.remoteAddress ?? 'unknown';
    serveTcpConnection(socket, this.config.tcp, (msg) => this.handle(msg, 'tcp', client));
  }
}
