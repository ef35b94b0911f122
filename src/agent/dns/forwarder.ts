import { randomInt } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import { AnswerCache, cacheKey } from './dns-cache.js';
import { UdpUpstreams, type UdpPoolOptions } from './upstream-udp.js';
import { parseUpstream, tcpExchange, type Exchanged, type Upstream } from './upstream.js';
import { withId } from './wire-build.js';
import type { Query } from './wire.js';

/**
 * Sends non-app queries to the resolvers the OS used before the agent took over DNS, and
 * caches their answers. The query goes out exactly as the client sent it except for a fresh
 * random ID, and the answer comes back exactly as the upstream sent it except for the ID.
 */

export type Transport = 'udp' | 'tcp';

export interface ForwarderOptions {
  upstreams: readonly string[];
  /** Time allowed for one attempt against one upstream. */
  attemptTimeoutMs: number;
  /** Attempts per query, cycling through the upstreams (at least 2, so one lost datagram is retried). */
  attempts?: number;
  /** Queries waiting for an upstream at once; beyond that they fail fast with SERVFAIL. */
  maxInflight: number;
  cache: AnswerCache;
  logger: Logger;
  /** Rotation of the UDP sockets towards upstreams (upstream-udp.ts); defaults are fine. */
  udp?: Omit<UdpPoolOptions, 'onError'>;
}

export type ForwardFailure = 'no-upstream' | 'overloaded' | 'timeout';

/** The query could not be answered upstream; the server turns this into SERVFAIL. */
export class ForwardError extends Error {
  constructor(
    readonly reason: ForwardFailure,
    message: string,
  ) {
    super(message);
    this.name = 'ForwardError';
  }
}

export interface ForwarderStats {
  upstreamQueries: number;
  cacheHits: number;
  tcpFallbacks: number;
  failedAttempts: number;
}

export class Forwarder {
  private upstreams: Upstream[] = [];
  /** Index of the upstream that answered last: tried first, so one dead resolver costs one timeout. */
  private preferred = 0;
  private inflight = 0;
  private readonly udp: UdpUpstreams;
  readonly stats: ForwarderStats = { upstreamQueries: 0, cacheHits: 0, tcpFallbacks: 0, failedAttempts: 0 };

  constructor(private readonly opts: ForwarderOptions) {
    this.udp = new UdpUpstreams({
      ...opts.udp,
      onError: (err, upstream) => opts.logger.debug({ upstream, err: String(err) }, 'dns upstream udp socket error'),
    });
    this.setUpstreams(opts.upstreams);
  }

  /** Replace the upstream list (network change); cached answers from the old ones are dropped. */
  setUpstreams(list: readonly string[]): void {
    this.upstreams = list.map(parseUpstream);
    this.preferred = 0;
    this.opts.cache.clear();
    this.udp.retain(this.upstreams);
  }

  /** Close the sockets towards upstreams; queries still waiting on them fail, and new ones until open(). */
  close(): void {
    this.udp.close();
  }

  open(): void {
    this.udp.open();
  }

  get upstreamLabels(): string[] {
    return this.upstreams.map((u) => u.label);
  }

  /** The answer to `q` (whose raw bytes are `raw`), with the client's ID. Throws ForwardError. */
  async resolve(q: Query, raw: Buffer, transport: Transport): Promise<Buffer> {
    const key = cacheKey(q);
    const hit = this.opts.cache.get(key, q);
    if (hit) {
      this.stats.cacheHits += 1;
      return hit;
    }
    if (this.upstreams.length === 0) throw new ForwardError('no-upstream', 'no upstream resolver configured');
    if (this.inflight >= this.opts.maxInflight) {
      throw new ForwardError('overloaded', `${this.inflight} queries already waiting for upstream resolvers`);
    }
    this.inflight += 1;
    try {
      // Over UDP the socket pool gives every attempt its own random ID; TCP needs one here.
      const query = transport === 'tcp' ? withId(raw, randomInt(0, 0x10000)) : raw;
      const answer = await this.exchange(query, transport);
      this.opts.cache.put(key, answer.msg);
      return withId(answer.msg, q.id);
    } finally {
      this.inflight -= 1;
    }
  }

  private async exchange(query: Buffer, transport: Transport): Promise<Exchanged> {
    const list = this.upstreams;
    const attempts = this.opts.attempts ?? Math.max(2, list.length);
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const index = (this.preferred + i) % list.length;
      const up = list[index] as Upstream;
      try {
        this.stats.upstreamQueries += 1;
        const answer = await this.attempt(up, query, transport);
        if (list === this.upstreams) this.preferred = index;
        return answer;
      } catch (err) {
        this.stats.failedAttempts += 1;
        lastError = err;
        this.opts.logger.debug({ upstream: up.label, transport, err: String(err) }, 'dns upstream attempt failed');
      }
    }
    throw new ForwardError('timeout', `no upstream answered: ${String(lastError)}`);
  }

  private async attempt(up: Upstream, query: Buffer, transport: Transport): Promise<Exchanged> {
    const timeout = this.opts.attemptTimeoutMs;
    if (transport === 'tcp') return tcpExchange(up, query, timeout);
    const answer = await this.udp.exchange(up, query, timeout);
    if (!answer.info.truncated) return answer;
    // Truncated: fetch the whole answer over TCP so it can be cached, then the server decides
    // whether it fits the client's buffer. If TCP fails the client still gets the truncated
    // answer and can retry over TCP itself.
    this.stats.tcpFallbacks += 1;
    try {
      return await tcpExchange(up, withId(query, randomInt(0, 0x10000)), timeout);
    } catch (err) {
      this.opts.logger.debug({ upstream: up.label, err: String(err) }, 'dns upstream tcp fallback failed');
      return answer;
    }
  }
}
