import type { Logger } from '../../common/log.js';
import { normalizeName, tryNormalizeName } from '../../protocol/domain-match.js';
import { parseIpv4 } from '../ipam/cidr.js';
import { PoolExhaustedError, type SyntheticPool } from '../ipam/synthetic-pool.js';
import type { HotTarget } from './hot-answers.js';
import { ReachabilityCache, ReachabilityUnknownError } from './reachability-cache.js';
import { aRecord, buildReply, ptrRecord } from './wire-build.js';
import { CLASS_IN, QTYPE, RCODE, type Query } from './wire.js';

/**
 * The part of the resolver that answers for app segments itself: A records with synthetic
 * IPs, PTR records for those IPs, search-domain completion of short names and domain
 * validation. Everything it does not own is handed back as "forward".
 */

/** Who owns a name: the tenant whose app segment matches it (tenant-router's routeName). */
export type AppLookup = (fqdn: string) => { tenant: string } | undefined;

export type AppOutcome = 'app' | 'nxdomain' | 'servfail';
/**
 * `hot` comes with answers for an app name (A with its synthetic IP, or the empty NOERROR of
 * other types): what the answer depended on, so the server may reuse it (hot-answers.ts).
 */
export type AppReply = { kind: 'reply'; msg: Buffer; outcome: AppOutcome; hot?: HotTarget };
export type AppDecision = AppReply | { kind: 'forward' };

export interface SearchSettings {
  /** Suffixes tried, in order, to complete a short name (the tenant's DNS search domains). */
  searchDomains: readonly string[];
  /**
   * Domain validation (seed 003): a short name that completes to no app, and any name below a
   * search domain that is not an app, get NXDOMAIN instead of being forwarded, so the OS does
   * not go on trying its own search list and leak the name to other resolvers.
   */
  domainValidation: boolean;
  /** A name with fewer dots than this is "short" and gets completed (resolv.conf semantics). */
  ndots: number;
}

export interface AppAnswersOptions extends SearchSettings {
  pool: SyntheticPool;
  appFor: AppLookup;
  reachability: ReachabilityCache;
  /** TTL of synthetic answers, in seconds. */
  ttlSec: number;
  logger: Logger;
}

const REVERSE_SUFFIX = '.in-addr.arpa';

export class AppAnswers {
  private search: SearchSettings;

  constructor(private readonly opts: AppAnswersOptions) {
    this.search = AppAnswers.normalise(opts);
  }

  /** Normalise and validate search settings; throws InvalidDomainError for a bad domain. */
  static normalise(s: SearchSettings): SearchSettings {
    return { searchDomains: s.searchDomains.map(normalizeName), domainValidation: s.domainValidation, ndots: s.ndots };
  }

  setSearch(s: SearchSettings): void {
    this.search = AppAnswers.normalise(s);
  }

  async answer(q: Query): Promise<AppDecision> {
    if (q.qclass !== CLASS_IN) return { kind: 'forward' };
    // A name that does not normalise (escaped bytes, the root) is never an app name.
    const name = tryNormalizeName(q.qname);
    if (name === null) return { kind: 'forward' };
    if (name.endsWith(REVERSE_SUFFIX)) return this.reverse(q, name);
    const target = this.target(name);
    if (target === 'nxdomain') return this.reply(q, RCODE.NXDOMAIN, 'nxdomain');
    if (!target) return { kind: 'forward' };
    return this.appAnswer(q, name, target.fqdn, target.tenant);
  }

  /**
   * Whether a remembered app answer still holds, decided synchronously: `name` still stands
   * for the same app of the same tenant, the edge's positive verdict is still cached, and for
   * an A answer the pool still maps the app to the same IP. That last check is the pool's
   * assign() for an existing mapping, so the mapping is touched as a full answer touches it.
   * False means the full path must answer (it asks, assigns or refuses as usual).
   */
  stillAnswers(t: HotTarget): boolean {
    const now = this.target(t.name);
    if (typeof now !== 'object' || now.fqdn !== t.fqdn || now.tenant !== t.tenant) return false;
    if (this.opts.reachability.peek(t.reachKey) !== true) return false;
    return t.ip === undefined || this.opts.pool.touchAssigned(t.fqdn, t.tenant) === t.ip;
  }

  /** The app a question name stands for, "nxdomain" under domain validation, or undefined. */
  private target(name: string): { fqdn: string; tenant: string } | 'nxdomain' | undefined {
    const { searchDomains, domainValidation, ndots } = this.search;
    let dots = 0;
    for (let i = name.indexOf('.'); i !== -1; i = name.indexOf('.', i + 1)) dots += 1;
    if (dots < ndots) {
      for (const domain of searchDomains) {
        const fqdn = `${name}.${domain}`;
        const owner = this.opts.appFor(fqdn);
        if (owner) return { fqdn, tenant: owner.tenant };
      }
    }
    const owner = this.opts.appFor(name);
    if (owner) return { fqdn: name, tenant: owner.tenant };
    if (!domainValidation) return undefined;
    if (dots < ndots && searchDomains.length > 0) return 'nxdomain';
    return searchDomains.some((d) => name.endsWith(`.${d}`)) ? 'nxdomain' : undefined;
  }

  private async appAnswer(q: Query, name: string, fqdn: string, tenant: string): Promise<AppDecision> {
    // Every type asks first: an app the edge cannot reach must be NXDOMAIN for A and AAAA
    // alike, or clients would see a consistent "exists, no address" and keep retrying.
    let reachable: boolean;
    try {
      reachable = await this.opts.reachability.isReachable(tenant, fqdn);
    } catch (err) {
      if (!(err instanceof ReachabilityUnknownError)) throw err;
      this.opts.logger.warn({ fqdn, tenant, err: String(err.cause) }, 'dns: no reachability verdict from the edge');
      return this.reply(q, RCODE.SERVFAIL, 'servfail');
    }
    if (!reachable) return this.reply(q, RCODE.NXDOMAIN, 'nxdomain');
    // AAAA and every other type: the name exists but has no such record. Never AAAA data:
    // IPv6 would be a side door around the IPv4-only interception.
    const hot: HotTarget = { name, fqdn, tenant, reachKey: ReachabilityCache.keyOf(tenant, fqdn) };
    if (q.qtype !== QTYPE.A) return { ...this.reply(q, RCODE.NOERROR, 'app'), hot };
    let ip: string;
    try {
      ip = this.opts.pool.assign(fqdn, tenant);
    } catch (err) {
      if (!(err instanceof PoolExhaustedError)) throw err;
      this.opts.logger.warn({ fqdn, tenant, mappings: err.mappings }, 'dns: synthetic IP pool exhausted');
      return this.reply(q, RCODE.SERVFAIL, 'servfail');
    }
    const answer = this.reply(q, RCODE.NOERROR, 'app', [aRecord(this.opts.ttlSec, ip)]);
    const n = parseIpv4(ip);
    return n === null ? answer : { ...answer, hot: { ...hot, ip: n } };
  }

  /** PTR (and any other type) for a name in the synthetic range; other reverse names go upstream. */
  private reverse(q: Query, name: string): AppDecision {
    const labels = name.slice(0, -REVERSE_SUFFIX.length).split('.');
    if (labels.length !== 4) return { kind: 'forward' };
    const ip = labels.reverse().join('.');
    if (!this.opts.pool.contains(ip)) return { kind: 'forward' };
    const mapping = this.opts.pool.lookupIp(ip);
    if (!mapping) return this.reply(q, RCODE.NXDOMAIN, 'nxdomain');
    const answers = q.qtype === QTYPE.PTR ? [ptrRecord(this.opts.ttlSec, mapping.fqdn)] : [];
    return this.reply(q, RCODE.NOERROR, 'app', answers);
  }

  private reply(q: Query, rcode: number, outcome: AppOutcome, answers: Buffer[] = []): AppReply {
    return { kind: 'reply', msg: buildReply(q, rcode, answers, outcome !== 'servfail'), outcome };
  }
}
