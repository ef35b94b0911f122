import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/agent/dns/rate-limit.js';

/** The limiter as first written (a Map lookup and re-insertion per query): the reference. */
class ReferenceLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly opts: { qps: number; burst: number; maxClients: number; now: () => number }) {}

  allow(client: string): boolean {
    const now = this.opts.now();
    const b = this.buckets.get(client);
    if (!b) {
      this.buckets.set(client, { tokens: this.opts.burst - 1, at: now });
      if (this.buckets.size > this.opts.maxClients) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      return true;
    }
    this.buckets.delete(client);
    this.buckets.set(client, b);
    b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) * this.opts.qps) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

describe('rate limiter', () => {
  it('decides exactly as the reference on random clients, bursts and clock steps (eviction included)', () => {
    const step = fc.record({ client: fc.constantFrom('a', 'b', 'c', 'd'), repeat: fc.integer({ min: 1, max: 6 }), advanceMs: fc.constantFrom(0, 0, 1, 50, 400) });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), (steps, maxClients, burst) => {
        let t = 0;
        const opts = { qps: 10, burst, maxClients, now: () => t };
        const ours = new RateLimiter(opts);
        const ref = new ReferenceLimiter(opts);
        for (const s of steps) {
          t += s.advanceMs;
          // A fresh string each time, as the socket delivers addresses.
          for (let i = 0; i < s.repeat; i++) expect(ours.allow(`${s.client}`.slice(0))).toBe(ref.allow(s.client));
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
