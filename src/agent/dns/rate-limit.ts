/**
 * Per-client token bucket. Local applications can loop on DNS (a retry storm, a broken
 * browser extension); the bound keeps one of them from starving the others and from pushing
 * a flood to the edge and the upstream resolvers.
 */

export interface RateLimitOptions {
  /** Sustained queries per second per client IP. */
  qps: number;
  /** Bucket size: queries a client may send at once after being quiet. */
  burst: number;
  /** Clients tracked at once; the least recently seen is forgotten first (a full bucket again). */
  maxClients: number;
  now: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /**
   * The most recently seen client and its bucket: already last in the Map, so a run of queries
   * from one address (the usual case on a desktop) needs no lookup and no re-insertion.
   */
  private newestClient: string | undefined;
  private newestBucket: Bucket | undefined;

  constructor(private readonly opts: RateLimitOptions) {}

  /** Take one token for `client`; false when its bucket is empty. */
  allow(client: string): boolean {
    const now = this.opts.now();
    let b = client === this.newestClient ? this.newestBucket : undefined;
    if (!b) {
      b = this.buckets.get(client);
      if (!b) {
        b = { tokens: this.opts.burst - 1, at: now };
        this.buckets.set(client, b);
        this.newest(client, b);
        if (this.buckets.size > this.opts.maxClients) {
          const oldest = this.buckets.keys().next().value;
          if (oldest !== undefined) this.buckets.delete(oldest);
        }
        return true;
      }
      // Re-insert to keep the Map in least-recently-seen order for eviction.
      this.buckets.delete(client);
      this.buckets.set(client, b);
      this.newest(client, b);
    }
    b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) * this.opts.qps) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private newest(client: string, b: Bucket): void {
    this.newestClient = client;
    this.newestBucket = b;
  }
}
