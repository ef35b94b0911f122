import type { Logger } from '../../common/log.js';
import type { MicrotunnelTarget } from '../../protocol/microtunnel-open.js';
import type { ZTunnelSession } from '../../protocol/session.js';

/** A connector with a live Z-Tunnel to this edge. */
export interface ConnectorHandle {
  readonly id: string;
  readonly tenant: string;
  readonly group: string;
  readonly session: ZTunnelSession;
  /** Microtunnels this edge currently stitches through it. */
  active: number;
  /** Last load the connector itself reported. */
  reportedActive: number;
}

export type Selection =
  | { ok: true; connector: ConnectorHandle; rttMs: number; reason: string }
  | { ok: false; reason: 'no-connector' | 'unreachable'; detail: string };

interface ProbeEntry {
  ok: boolean;
  rttMs: number;
  reason?: string;
  expires: number;
}

function probeKey(c: ConnectorHandle, t: MicrotunnelTarget): string {
  return `${c.tenant}/${c.id}|${t.proto}|${t.host}|${t.port}`;
}

/** Seed 003: groups whose RTT is within 2 ms of the best are equally close. */
const RTT_THRESHOLD_MS = 2;
const FAILED_PROBE_TTL_MS = 5_000;
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Chooses the connector for a microtunnel (seed 003, "Dispatcher"): candidates are healthy
 * connectors of the segment's groups that can resolve and reach the target — asked by a probe
 * over their Z-Tunnel, results cached — then lowest RTT, then least utilisation.
 */
export class Dispatcher {
  private readonly connectors = new Map<string, ConnectorHandle>();
  private readonly probes = new Map<string, ProbeEntry>();
  private readonly inflight = new Map<string, Promise<ProbeEntry>>();

  constructor(
    private readonly log: Logger,
    private readonly probeCacheMs = 30_000,
  ) {}

  register(handle: ConnectorHandle): void {
    const key = `${handle.tenant}/${handle.id}`;
    const previous = this.connectors.get(key);
    if (previous && previous !== handle) previous.session.destroy(new Error('replaced by a newer session of the same connector'));
    this.connectors.set(key, handle);
    this.log.info({ tenant: handle.tenant, connector: handle.id, group: handle.group }, 'connector registered');
  }

  unregister(handle: ConnectorHandle): void {
    const key = `${handle.tenant}/${handle.id}`;
    if (this.connectors.get(key) !== handle) return;
    this.connectors.delete(key);
    for (const k of this.probes.keys()) if (k.startsWith(`${key}|`)) this.probes.delete(k);
    this.log.info({ tenant: handle.tenant, connector: handle.id }, 'connector unregistered');
  }

  list(tenant?: string): ConnectorHandle[] {
    return [...this.connectors.values()].filter((c) => !tenant || c.tenant === tenant);
  }

  select(tenant: string, groups: readonly string[], target: MicrotunnelTarget): Promise<Selection> {
    const candidates = this.list(tenant).filter((c) => groups.includes(c.group) && !c.session.closed);
    if (candidates.length === 0) {
      return Promise.resolve({ ok: false, reason: 'no-connector', detail: `no connector of group(s) ${groups.join(', ')} is connected` });
    }
    // Every open asks; between probes the answers come from the cache, without waiting on
    // anything (no promise per candidate, no extra turns of the event loop).
    const now = Date.now();
    const cached = candidates.map((c) => {
      const hit = this.probes.get(probeKey(c, target));
      return hit && hit.expires > now ? { c, probe: hit } : undefined;
    });
    if (cached.every((r) => r !== undefined)) return Promise.resolve(this.choose(tenant, target, cached as Array<{ c: ConnectorHandle; probe: ProbeEntry }>));
    return Promise.all(candidates.map(async (c) => ({ c, probe: await this.probe(c, target) }))).then((results) => this.choose(tenant, target, results));
  }

  private choose(tenant: string, target: MicrotunnelTarget, results: Array<{ c: ConnectorHandle; probe: ProbeEntry }>): Selection {
    const reachable = results.filter((r) => r.probe.ok);
    if (reachable.length === 0) {
      const why = results.map((r) => `${r.c.id}: ${r.probe.reason ?? 'unreachable'}`).join('; ');
      return { ok: false, reason: 'unreachable', detail: why };
    }
    let best = Infinity;
    for (const r of reachable) best = Math.min(best, r.probe.rttMs);
    const close = reachable.filter((r) => r.probe.rttMs - best < RTT_THRESHOLD_MS);
    close.sort((a, b) => a.c.active - b.c.active || a.c.reportedActive - b.c.reportedActive || a.c.id.localeCompare(b.c.id));
    const chosen = close[0] as (typeof close)[number];
    const reason =
      close.length === 1
        ? `lowest RTT ${chosen.probe.rttMs.toFixed(2)} ms of ${reachable.length} reachable`
        : `least utilised (${chosen.c.active} active) of ${close.length} within ${RTT_THRESHOLD_MS} ms of best RTT`;
    // Per open, so debug: the broker's 'microtunnel stitched' line carries the reason.
    this.log.debug({ tenant, connector: chosen.c.id, target: `${target.host}:${target.port}`, reason }, 'connector selected');
    return { ok: true, connector: chosen.c, rttMs: chosen.probe.rttMs, reason };
  }

  /** Whether some connector of the groups can resolve and reach the host (DNS answers depend on it). */
  async reachable(tenant: string, groups: readonly string[], target: MicrotunnelTarget): Promise<{ ok: boolean; reason?: string }> {
    const sel = await this.select(tenant, groups, target);
    return sel.ok ? { ok: true } : { ok: false, reason: sel.reason };
  }

  private probe(c: ConnectorHandle, t: MicrotunnelTarget): Promise<ProbeEntry> {
    const key = probeKey(c, t);
    const cached = this.probes.get(key);
    if (cached && cached.expires > Date.now()) return Promise.resolve(cached);
    const running = this.inflight.get(key);
    if (running) return running;
    const p = c.session
      .request('probe', { proto: t.proto, host: t.host, port: t.port }, PROBE_TIMEOUT_MS)
      .then(
        (r): ProbeEntry => ({ ok: r.ok, rttMs: r.rttMs ?? 0, reason: r.reason, expires: 0 }),
        (err: Error): ProbeEntry => ({ ok: false, rttMs: Infinity, reason: err.message, expires: 0 }),
      )
      .then((entry) => {
        entry.expires = Date.now() + (entry.ok ? this.probeCacheMs : FAILED_PROBE_TTL_MS);
        if (this.connectors.get(`${c.tenant}/${c.id}`) === c) this.probes.set(key, entry);
        this.inflight.delete(key);
        return entry;
      });
    this.inflight.set(key, p);
    return p;
  }
}
