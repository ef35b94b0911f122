/**
 * The edge's verdict on whether an app is reachable through its connectors (seed 003:
 * "DNS responses to ZCC are based on app reachability; DNS state is cached"). Each verdict
 * is cached, positive ones longer than negative ones so that an app coming back is noticed
 * soon, and concurrent questions for the same name share one call to the edge.
 */

export type ReachabilityCheck = (tenant: string, fqdn: string) => Promise<boolean>;

export interface ReachabilityCacheOptions {
  check: ReachabilityCheck;
  positiveTtlMs: number;
  negativeTtlMs: number;
  /** A check slower than this fails the query (SERVFAIL) rather than leaving the client waiting. */
  timeoutMs: number;
  maxEntries: number;
  now: () => number;
}

/** The edge did not give a verdict (timeout or error); nothing is cached. */
export class ReachabilityUnknownError extends Error {
  constructor(
    readonly tenant: string,
    readonly fqdn: string,
    options?: { cause?: unknown },
  ) {
    super(`no reachability verdict for ${fqdn} (tenant ${tenant})`, options);
    this.name = 'ReachabilityUnknownError';
  }
}

export class ReachabilityCache {
  private readonly verdicts = new Map<string, { reachable: boolean; expiresAt: number }>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  /** Calls made to the edge, for status and tests. */
  calls = 0;

  constructor(private readonly opts: ReachabilityCacheOptions) {}

  clear(): void {
    this.verdicts.clear();
  }

  /** The key of (tenant, fqdn), for peek(). */
  static keyOf(tenant: string, fqdn: string): string {
    // NUL cannot occur in a tenant id or a validated name, so the key is unambiguous.
    return `${tenant}\0${fqdn}`;
  }

  /**
   * The cached verdict for a key of keyOf(), without asking the edge: undefined when there is
   * none or it has expired (isReachable would then ask). No side effects.
   */
  peek(key: string): boolean | undefined {
    const cached = this.verdicts.get(key);
    return cached && cached.expiresAt > this.opts.now() ? cached.reachable : undefined;
  }

  /** Whether the app is reachable. Rejects with ReachabilityUnknownError. */
  isReachable(tenant: string, fqdn: string): Promise<boolean> {
    const key = ReachabilityCache.keyOf(tenant, fqdn);
    const cached = this.verdicts.get(key);
    if (cached && cached.expiresAt > this.opts.now()) return Promise.resolve(cached.reachable);
    if (cached) this.verdicts.delete(key);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.ask(tenant, fqdn, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async ask(tenant: string, fqdn: string, key: string): Promise<boolean> {
    this.calls += 1;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    });
    let reachable: boolean;
    try {
      // Promise.resolve().then(): a check that throws synchronously is handled like a rejection.
      reachable = await Promise.race([Promise.resolve().then(() => this.opts.check(tenant, fqdn)), timeout]);
    } catch (cause) {
      throw new ReachabilityUnknownError(tenant, fqdn, { cause });
    } finally {
      clearTimeout(timer);
    }
    const ttl = reachable ? this.opts.positiveTtlMs : this.opts.negativeTtlMs;
    this.verdicts.set(key, { reachable: reachable === true, expiresAt: this.opts.now() + ttl });
    if (this.verdicts.size > this.opts.maxEntries) {
      const oldest = this.verdicts.keys().next().value;
      if (oldest !== undefined) this.verdicts.delete(oldest);
    }
    return reachable === true;
  }
}
