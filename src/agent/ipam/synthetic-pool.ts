import { normalizeName, tryNormalizeName } from '../../protocol/domain-match.js';
import { formatIpv4, parseIpv4, parsePoolCidr, type Ipv4Range } from './cidr.js';

/**
 * Synthetic IPv4 addresses for app FQDNs (contract: 100.64.0.0/10 by default, one IP per
 * FQDN, stable while in use). The DNS server hands them out; the intercept maps a connection's
 * destination IP back to the FQDN and tenant, and holds a reference for as long as the
 * connection lives so the mapping cannot be recycled under it.
 *
 * Every operation is O(1): two Maps (by name, by IP) plus an LRU of the mappings that have no
 * live connection, kept as a doubly linked list through the mappings themselves (least
 * recently used first), so the touch of every DNS answer moves two pointers and hashes nothing.
 */

export const DEFAULT_POOL_CIDR = '100.64.0.0/10';
/** Cap on simultaneous mappings: a /10 has 4M addresses, far more than memory should hold. */
export const DEFAULT_MAX_MAPPINGS = 65_536;
/**
 * How long an idle mapping is kept before it may be recycled. Clients cache the DNS answer
 * (10 s TTL) and many applications cache longer than the TTL says (JVM 30 s, browsers about
 * 60 s); recycling sooner could send a cached IP's next connection to another app.
 */
export const DEFAULT_HOLD_MS = 60_000;

export interface SyntheticPoolOptions {
  /** IPv4 CIDR, /8 to /30; network and broadcast addresses are never handed out. */
  cidr?: string;
  /** Most mappings held at once; recycling starts when reached (or when the CIDR is full). */
  maxMappings?: number;
  /** An idle mapping is not recycled until this long after its last use. */
  holdMs?: number;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

export interface PoolMapping {
  fqdn: string;
  tenant: string;
}

export interface PoolEntry extends PoolMapping {
  ip: string;
  liveConnections: number;
  lastUsedMs: number;
}

/** No address can be handed out: every mapping is live or was used within the hold time. */
export class PoolExhaustedError extends Error {
  readonly code = 'POOL_EXHAUSTED';

  constructor(
    readonly fqdn: string,
    readonly mappings: number,
  ) {
    super(`synthetic IP pool exhausted: ${mappings} mappings all in use, none free for ${fqdn}`);
    this.name = 'PoolExhaustedError';
  }
}

interface Mapping {
  fqdn: string;
  tenant: string;
  ip: number;
  refs: number;
  lastUsed: number;
  /** Neighbours in the idle LRU list; both undefined (and not the head) when not in it. */
  prev: Mapping | undefined;
  next: Mapping | undefined;
}

/** The mappings without live connections, least recently used first. */
class IdleList {
  private head: Mapping | undefined;
  private tail: Mapping | undefined;

  /** The least recently used idle mapping. */
  first(): Mapping | undefined {
    return this.head;
  }

  has(m: Mapping): boolean {
    return m.prev !== undefined || this.head === m;
  }

  /** Append at the most-recently-used end (moving it there if already in the list). */
  push(m: Mapping): void {
    if (this.tail === m) return;
    if (this.has(m)) this.remove(m);
    m.prev = this.tail;
    m.next = undefined;
    if (this.tail) this.tail.next = m;
    else this.head = m;
    this.tail = m;
  }

  remove(m: Mapping): void {
    if (!this.has(m)) return;
    if (m.prev) m.prev.next = m.next;
    else this.head = m.next;
    if (m.next) m.next.prev = m.prev;
    else this.tail = m.prev;
    m.prev = undefined;
    m.next = undefined;
  }
}

export class SyntheticPool {
  readonly range: Ipv4Range;
  private readonly maxMappings: number;
  private readonly holdMs: number;
  private readonly now: () => number;
  private readonly byName = new Map<string, Mapping>();
  private readonly byIp = new Map<number, Mapping>();
  /** Mappings with no live connection, least recently used first: the recycling candidates. */
  private readonly idle = new IdleList();
  /** Offset of the next never-used address; addresses below it are in byIp. */
  private cursor = 0;
  /**
   * Called, synchronously, when a name gets an IP or an IP changes tenant: the native data
   * plane's routes follow the pool through it, before the DNS answer leaves.
   */
  onMapping: ((fqdn: string, tenant: string, ip: string) => void) | null = null;

  constructor(options: SyntheticPoolOptions = {}) {
    this.range = parsePoolCidr(options.cidr ?? DEFAULT_POOL_CIDR);
    const max = options.maxMappings ?? DEFAULT_MAX_MAPPINGS;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxMappings must be a positive integer, got ${max}`);
    this.maxMappings = Math.min(max, this.range.size);
    const hold = options.holdMs ?? DEFAULT_HOLD_MS;
    if (!Number.isFinite(hold) || hold < 0) throw new RangeError(`holdMs must be >= 0, got ${hold}`);
    this.holdMs = hold;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.byName.size;
  }

  /** Whether `ip` lies in the pool's usable range (assigned or not). */
  contains(ip: string): boolean {
    const n = parseIpv4(ip);
    return n !== null && n >= this.range.first && n < this.range.first + this.range.size;
  }

  /**
   * The IP for `name`, assigning one if needed. An existing mapping keeps its IP and takes the
   * new tenant (segments may have moved). Throws PoolExhaustedError, or InvalidDomainError for
   * a name that is not a valid DNS name (names are stored normalised: lower case, no final dot).
   */
  assign(name: string, tenant: string): string {
    const fqdn = normalizeName(name);
    const existing = this.byName.get(fqdn);
    if (existing) {
      if (existing.tenant !== tenant) this.retenant(existing, tenant);
      this.touch(existing);
      return formatIpv4(existing.ip);
    }
    const ip = this.freeAddress(fqdn);
    const m: Mapping = { fqdn, tenant, ip, refs: 0, lastUsed: this.now(), prev: undefined, next: undefined };
    this.byName.set(fqdn, m);
    this.byIp.set(ip, m);
    this.idle.push(m);
    const dotted = formatIpv4(ip);
    this.onMapping?.(fqdn, tenant, dotted);
    return dotted;
  }

  private retenant(m: Mapping, tenant: string): void {
    m.tenant = tenant;
    this.onMapping?.(m.fqdn, tenant, formatIpv4(m.ip));
  }

  /**
   * For a name that is already normalised and assigned: what assign(fqdn, tenant) does to the
   * existing mapping (takes the tenant, counts as a use for the LRU), returning the IP as a
   * number. Undefined, changing nothing, when the name has no mapping (assign() then makes one).
   * The DNS server's hot path calls this instead of assign() to skip normalising again.
   */
  touchAssigned(fqdn: string, tenant: string): number | undefined {
    const existing = this.byName.get(fqdn);
    if (!existing) return undefined;
    if (existing.tenant !== tenant) this.retenant(existing, tenant);
    this.touch(existing);
    return existing.ip;
  }

  lookupIp(ip: string): PoolMapping | undefined {
    const m = this.mappingAt(ip);
    return m && { fqdn: m.fqdn, tenant: m.tenant };
  }

  lookupName(name: string): string | undefined {
    const fqdn = tryNormalizeName(name);
    const m = fqdn === null ? undefined : this.byName.get(fqdn);
    return m && formatIpv4(m.ip);
  }

  /**
   * A connection to `ip` starts: pin the mapping until the matching release(). Returns the
   * mapping, or undefined when the IP is not assigned (the connection must then be refused).
   */
  acquire(ip: string): PoolMapping | undefined {
    const m = this.mappingAt(ip);
    if (!m) return undefined;
    if (m.refs === 0) this.idle.remove(m);
    m.refs += 1;
    m.lastUsed = this.now();
    return { fqdn: m.fqdn, tenant: m.tenant };
  }

  /**
   * A connection to `ip` ended. Returns false (and changes nothing) for an unknown IP or one
   * with no live connection: a double release is a caller bug, but must not corrupt the pool.
   */
  release(ip: string): boolean {
    const m = this.mappingAt(ip);
    if (!m || m.refs === 0) return false;
    m.refs -= 1;
    m.lastUsed = this.now();
    // Back into the idle LRU at the most-recently-used end: it was just in use.
    if (m.refs === 0) this.idle.push(m);
    return true;
  }

  /** All mappings ordered by IP, for status output (not on any hot path). */
  snapshot(): PoolEntry[] {
    return [...this.byIp.values()]
      .sort((a, b) => a.ip - b.ip)
      .map((m) => ({ ip: formatIpv4(m.ip), fqdn: m.fqdn, tenant: m.tenant, liveConnections: m.refs, lastUsedMs: m.lastUsed }));
  }

  private mappingAt(ip: string): Mapping | undefined {
    const n = parseIpv4(ip);
    return n === null ? undefined : this.byIp.get(n);
  }

  private touch(m: Mapping): void {
    m.lastUsed = this.now();
    if (m.refs === 0) {
      this.idle.push(m);
    }
  }

  private freeAddress(fqdn: string): number {
    if (this.cursor < this.maxMappings) {
      const ip = this.range.first + this.cursor;
      this.cursor += 1;
      return ip;
    }
    // Full: recycle the least recently used idle mapping. If even that one was used within
    // the hold time, every other idle one was used more recently still, so none qualifies.
    const victim = this.idle.first();
    if (!victim || this.now() - victim.lastUsed < this.holdMs) {
      throw new PoolExhaustedError(fqdn, this.byName.size);
    }
    this.idle.remove(victim);
    this.byName.delete(victim.fqdn);
    this.byIp.delete(victim.ip);
    return victim.ip;
  }
}
