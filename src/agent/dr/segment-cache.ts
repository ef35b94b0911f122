import { z } from 'zod';
import { AppSegment } from '../../protocol/segments.js';

/**
 * The agent's copy of each tenant's app segments, taken while the cloud is healthy, so that
 * during DR names resolve and route from it (DR-designated segments only) even before a private
 * service edge answers. In memory; `snapshot`/`restore` let the runtime keep it in sealed state.
 */
export const SegmentCacheSnapshot = z.object({
  version: z.literal(1),
  tenants: z.record(z.string(), z.object({ cachedAt: z.number(), segments: z.array(AppSegment) })),
});
export type SegmentCacheSnapshot = z.infer<typeof SegmentCacheSnapshot>;

export interface CachedSegments {
  cachedAt: number;
  segments: AppSegment[];
}

export class SegmentCache {
  private readonly entries = new Map<string, CachedSegments>();

  /** Whether a new copy is due: never cached, or older than the interval. */
  due(tenant: string, now: number, intervalMs: number): boolean {
    const e = this.entries.get(tenant);
    return !e || now - e.cachedAt >= intervalMs;
  }

  put(tenant: string, segments: readonly AppSegment[], now: number): void {
    // A copy: the tunnel replaces its list on updates, and the cache must not follow it into DR.
    this.entries.set(tenant, { cachedAt: now, segments: segments.map((s) => ({ ...s })) });
  }

  get(tenant: string): CachedSegments | undefined {
    return this.entries.get(tenant);
  }

  /** What DR serves: the DR-designated segments of the last healthy copy. */
  drSegments(tenant: string): AppSegment[] {
    return (this.entries.get(tenant)?.segments ?? []).filter((s) => s.drEnabled);
  }

  forget(tenant: string): void {
    this.entries.delete(tenant);
  }

  snapshot(): SegmentCacheSnapshot {
    return { version: 1, tenants: Object.fromEntries(this.entries) };
  }

  /** Loads a snapshot (validated: sealed state may come from an older agent). */
  restore(raw: unknown): void {
    const s = SegmentCacheSnapshot.parse(raw);
    for (const [tenant, e] of Object.entries(s.tenants)) this.entries.set(tenant, e);
  }
}
