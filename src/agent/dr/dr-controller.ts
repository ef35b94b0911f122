import { EventEmitter } from 'node:events';
import type { Logger } from '../../common/log.js';
import { extendedAuthExpiry, formatDrTime, type DrMode } from '../../protocol/dr-record.js';
import type { AppSegment } from '../../protocol/segments.js';
import type { EdgeTarget, TunnelClient } from '../tunnel/tunnel-client.js';
import { DrSettings, drPublicKey, type DrSettingsInput } from './dr-config.js';
import { resolverDrDns, type DrDns } from './dr-dns.js';
import { drApplies, mayCache, pseTargets, sameTargets } from './dr-policy.js';
import { DrWatcher } from './dr-watcher.js';
import { SegmentCache } from './segment-cache.js';

export interface DrTenantSetup {
  settings: DrSettingsInput;
  /** The tenant's edge server name: what PSE certificates are checked against by default. */
  serverName: string;
}

export interface DrControllerOptions {
  log: Logger;
  tenants: Record<string, DrTenantSetup>;
  /** DNS access, replaceable in tests; default: node's resolver on the configured servers. */
  dns?: (settings: DrSettings) => DrDns;
  now?: () => number;
}

export interface DrModeEvent {
  tenant: string;
  mode: DrMode;
  previous: DrMode;
  /** DR applies to this device: its Z-Tunnel goes to the PSEs and the UI shows Safe Mode. */
  active: boolean;
  edges: EdgeTarget[];
}

export interface DrTenantStatus {
  tenant: string;
  domain: string;
  mode: DrMode;
  active: boolean;
  safeMode: boolean;
  edges: string[];
  record?: { b: DrMode; k: string; m: string; t: string; x: string };
  activeSince?: string;
  lastPollAt?: string;
  warnings: string[];
  cachedSegments: number;
  drSegments: number;
  cachedAt?: string;
}

interface TenantState {
  id: string;
  settings: DrSettings;
  serverName: string;
  dns: DrDns;
  watcher: DrWatcher;
  active: boolean;
  activeSince?: number;
  edges: EdgeTarget[];
  tunnel?: TunnelClient;
  /** Mode changes are handled one at a time (each awaits an A lookup). */
  queue: Promise<void>;
}

/**
 * The agent's disaster-recovery orchestration, per tenant: watches the DR domain, and while DR
 * applies to this device sends the tenant's Z-Tunnel to the private service edges named by the
 * domain's A records, with the device's existing certificate. The runtime wires it in with
 * `attach(tenant, tunnel)` and listens to `onModeChange` (Safe Mode in the UI, DNS from
 * `drSegments`); `snapshot`/`restore` carry the cached config through sealed state.
 */
export class DrController {
  private readonly states = new Map<string, TenantState>();
  private readonly events = new EventEmitter<{ mode: [DrModeEvent] }>();
  private readonly cache = new SegmentCache();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly now: () => number;

  constructor(private readonly opts: DrControllerOptions) {
    this.now = opts.now ?? Date.now;
    for (const [id, setup] of Object.entries(opts.tenants)) {
      const settings = DrSettings.parse(setup.settings);
      const dns = opts.dns?.(settings) ?? resolverDrDns(settings.resolvers, settings.lookupTimeoutMs);
      const log = opts.log.child({ tenant: id, component: 'dr' });
      const watcher = new DrWatcher({ domain: settings.domain, dns, publicKey: drPublicKey(settings), pollMs: settings.pollMs, log, now: this.now });
      const st: TenantState = { id, settings, serverName: settings.pseServerName ?? setup.serverName, dns, watcher, active: false, edges: [], queue: Promise.resolve() };
      watcher.on('change', (c) => this.enqueue(st, () => this.onChange(st, c.mode, c.previous)));
      watcher.on('polled', () => {
        if (st.active) this.enqueue(st, () => this.refreshEdges(st));
      });
      this.states.set(id, st);
    }
  }

  start(): void {
    for (const st of this.states.values()) st.watcher.start();
  }

  stop(): void {
    for (const st of this.states.values()) st.watcher.stop();
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Calls `cb` on every DR mode change of any tenant; returns the unsubscribe function. */
  onModeChange(cb: (e: DrModeEvent) => void): () => void {
    this.events.on('mode', cb);
    return () => this.events.off('mode', cb);
  }

  /** Where the tenant's Z-Tunnel should go: the PSEs while DR applies, else undefined (the cloud). */
  currentEdges(tenant: string): EdgeTarget[] | undefined {
    const st = this.states.get(tenant);
    return st?.active ? st.edges : undefined;
  }

  isActive(tenant: string): boolean {
    return this.states.get(tenant)?.active ?? false;
  }

  /** Polls every tenant's DR domain now (tests, or a "check now" button). */
  async pollNow(): Promise<void> {
    await Promise.all([...this.states.values()].map((st) => st.watcher.poll()));
    await Promise.all([...this.states.values()].map((st) => st.queue));
  }

  /**
   * Hooks a tenant's tunnel up: its edge comes from `currentEdges`, it reconnects when DR starts
   * or ends, and its segments are cached while it is healthy on the main edge.
   */
  attach(tenant: string, tunnel: TunnelClient): () => void {
    const st = this.states.get(tenant);
    if (!st) throw new Error(`no DR settings for tenant ${tenant}`);
    st.tunnel = tunnel;
    tunnel.setEdgeOverride(() => this.currentEdges(tenant));
    const cacheIfDue = (force: boolean): void => {
      const healthy = mayCache({ drActive: st.active, connected: tunnel.status.state === 'connected', edge: tunnel.status.edge, pseEdges: st.edges });
      if (healthy && tunnel.segments.length && (force || this.cache.due(tenant, this.now(), st.settings.cacheIntervalMs))) this.cache.put(tenant, tunnel.segments, this.now());
    };
    // Segments arrive just before the tunnel counts as connected: try on both.
    const onSegments = (): void => cacheIfDue(false);
    tunnel.on('segments', onSegments);
    tunnel.on('status', onSegments);
    const timer = setInterval(() => cacheIfDue(true), st.settings.cacheIntervalMs).unref();
    this.timers.push(timer);
    cacheIfDue(false);
    return () => {
      tunnel.off('segments', onSegments);
      tunnel.off('status', onSegments);
      clearInterval(timer);
      tunnel.setEdgeOverride(undefined);
      st.tunnel = undefined;
    };
  }

  /** DR-designated segments of the last healthy copy: what DNS and routing serve during DR. */
  drSegments(tenant: string): AppSegment[] {
    return this.cache.drSegments(tenant);
  }

  /** The IdP is unreachable during DR: the last assertion holds until DR start + max age. */
  authValidUntil(tenant: string, lastExpiresAt: number): number {
    const st = this.states.get(tenant);
    if (!st?.active || st.activeSince === undefined) return lastExpiresAt;
    return extendedAuthExpiry(lastExpiresAt, st.activeSince, st.settings.maxAuthAgeHours * 3_600_000);
  }

  status(tenant: string): DrTenantStatus | undefined {
    const st = this.states.get(tenant);
    if (!st) return undefined;
    const r = st.watcher.record;
    const cached = this.cache.get(tenant);
    const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());
    return {
      tenant,
      domain: st.settings.domain,
      mode: st.watcher.mode,
      active: st.active,
      safeMode: st.active,
      edges: st.active ? st.edges.map((e) => e.edge) : [],
      record: r && { b: r.b, k: r.k, m: r.m, t: formatDrTime(r.t), x: formatDrTime(r.x) },
      activeSince: iso(st.activeSince),
      lastPollAt: iso(st.watcher.last?.at),
      warnings: st.watcher.last?.decision.warnings ?? [],
      cachedSegments: cached?.segments.length ?? 0,
      drSegments: this.cache.drSegments(tenant).length,
      cachedAt: iso(cached?.cachedAt),
    };
  }

  /** JSON for the runtime's sealed state: the cached segments. */
  snapshot(): unknown {
    return this.cache.snapshot();
  }

  restore(snapshot: unknown): void {
    this.cache.restore(snapshot);
  }

  private enqueue(st: TenantState, job: () => Promise<void>): void {
    st.queue = st.queue.then(job).catch((err: unknown) => this.opts.log.error({ tenant: st.id, err: (err as Error).message }, 'DR mode change failed'));
  }

  private async onChange(st: TenantState, mode: DrMode, previous: DrMode): Promise<void> {
    const wasActive = st.active;
    const active = drApplies(mode, st.settings.inTestGroup);
    // PSE addresses first, so the reconnect below already dials one.
    if (active) await this.refreshEdges(st, false);
    st.active = active;
    if (active && !wasActive) st.activeSince = this.now();
    if (!active) st.activeSince = undefined;
    const event: DrModeEvent = { tenant: st.id, mode, previous, active, edges: active ? st.edges : [] };
    this.opts.log.info({ tenant: st.id, mode, previous, active, edges: event.edges.map((e) => e.edge) }, active ? 'DR applies: Safe Mode, Z-Tunnel to private service edges' : 'DR does not apply: Z-Tunnel to the cloud');
    this.events.emit('mode', event);
    // Switching runtime modes disconnects sessions (seed 003).
    if (active !== wasActive) st.tunnel?.reconnect(`DR mode ${mode}`);
  }

  /** Re-reads the A records; reconnects a tunnel that had no PSE to go to. */
  private async refreshEdges(st: TenantState, reconnect = true): Promise<void> {
    let ips: string[];
    try {
      ips = await st.dns.a(st.settings.domain);
    } catch (err) {
      this.opts.log.warn({ tenant: st.id, err: (err as Error).message }, 'cannot resolve the private service edges of the DR domain; keeping the last list');
      return;
    }
    const edges = pseTargets(ips, st.settings.psePort, st.serverName);
    if (sameTargets(edges, st.edges)) return;
    const hadNone = st.edges.length === 0;
    st.edges = edges;
    this.opts.log.info({ tenant: st.id, edges: edges.map((e) => e.edge) }, 'private service edges');
    if (edges.length === 0) this.opts.log.warn({ tenant: st.id, domain: st.settings.domain }, 'DR domain has no A record: no private service edge to connect to');
    if (reconnect && st.active && hadNone && edges.length) st.tunnel?.reconnect('private service edge address known');
  }
}
