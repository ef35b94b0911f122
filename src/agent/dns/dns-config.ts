import net from 'node:net';
import { z } from 'zod';
import { tryNormalizeName } from '../../protocol/domain-match.js';
import { InvalidUpstreamError, parseUpstream } from './upstream.js';

/**
 * The agent DNS server's settings: what a config file may say, with defaults and the reason
 * for each default. Runtime collaborators (pool, callbacks, logger) are separate options.
 */

const upstream = z.string().refine(
  (s) => {
    try {
      parseUpstream(s);
      return true;
    } catch (e) {
      if (e instanceof InvalidUpstreamError) return false;
      throw e;
    }
  },
  { message: 'expected ip[:port], IPv6 as [addr]:port' },
);

const domain = z.string().refine((s) => tryNormalizeName(s) !== null, { message: 'not a valid DNS name' });

const ms = (max: number) => z.number().int().min(1).max(max);

export const DnsConfig = z.object({
  /** Listen address; loopback by default, the OS resolver configuration points here. */
  host: z.string().refine((h) => net.isIP(h) !== 0, { message: 'expected an IP address' }).default('127.0.0.1'),
  /** Port for both UDP and TCP; 0 picks a free one (the same for both). */
  port: z.number().int().min(0).max(65535).default(53),
  /** The resolvers the OS used before the agent took over, as ip[:port]. */
  upstreams: z.array(upstream).max(16).default([]),
  searchDomains: z.array(domain).max(32).default([]),
  domainValidation: z.boolean().default(false),
  /** Names with fewer dots than this are completed with the search domains (resolv.conf ndots). */
  ndots: z.number().int().min(1).max(15).default(1),
  /**
   * TTL of synthetic A/PTR answers. Short, so clients come back soon and reachability changes
   * are seen quickly; the IP stays the same across re-queries anyway because the pool keeps
   * the mapping (and holds it for a minute after last use), so a short TTL costs nothing.
   */
  appTtlSec: z.number().int().min(0).max(3600).default(10),
  reachabilityCache: z
    .object({
      /** A reachable app is not asked about again for this long. */
      positiveTtlMs: ms(3_600_000).default(60_000),
      /** Shorter: an app that comes back should be usable within seconds. */
      negativeTtlMs: ms(3_600_000).default(10_000),
      /** Below the 5 s of common stub resolvers, so the client gets SERVFAIL rather than silence. */
      timeoutMs: ms(60_000).default(3_000),
      maxEntries: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  upstream: z
    .object({
      /** Per attempt; two attempts fit in the 5 s a stub resolver waits. */
      attemptTimeoutMs: ms(60_000).default(2_000),
      attempts: z.number().int().min(1).max(10).optional(),
      maxInflight: z.number().int().min(1).default(1024),
    })
    .prefault({}),
  cache: z
    .object({
      maxEntries: z.number().int().min(0).default(10_000),
      /** Cap on how long any forwarded answer is kept, so a network change heals within an hour. */
      maxTtlSec: z.number().int().min(0).max(86_400).default(3_600),
    })
    .prefault({}),
  /** Per client IP; false disables. Far above what a desktop does, low enough to stop a loop. */
  rateLimit: z
    .union([
      z.literal(false),
      z.object({
        qps: z.number().positive().default(2_000),
        burst: z.number().min(1).default(4_000),
        maxClients: z.number().int().min(1).default(10_000),
      }),
    ])
    .prefault({}),
  /**
   * Largest UDP query accepted. Queries are small; anything above the biggest EDNS buffer a
   * client may advertise in practice is not a real query.
   */
  maxUdpQueryBytes: z.number().int().min(512).max(65_507).default(4_096),
  tcp: z
    .object({
      maxConnections: z.number().int().min(1).default(256),
      /** RFC 7766 asks servers to close idle connections after some seconds. */
      idleTimeoutMs: ms(600_000).default(10_000),
      /** Queries one connection may have outstanding; reading pauses beyond that. */
      maxPipelined: z.number().int().min(1).default(32),
      /** Unsent reply bytes allowed for one connection before a slow reader is dropped. */
      maxWriteBufferBytes: z.number().int().min(65_537).default(1 << 20),
    })
    .prefault({}),
});

export type DnsConfig = z.infer<typeof DnsConfig>;
export type DnsConfigInput = z.input<typeof DnsConfig>;
