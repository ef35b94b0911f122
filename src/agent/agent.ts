import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/log.js';
import type { L4Protocol } from '../protocol/segments.js';
import type { TlsIdentity } from '../protocol/tls.js';
import { DialError, type Dialer, type DialTarget, type StartedDial } from './intercept/dialer.js';
import { SyntheticPool } from './ipam/synthetic-pool.js';
import { routeName } from './tenants/tenant-router.js';
import { TunnelClient } from './tunnel/tunnel-client.js';

export interface TenantSettings {
  id: string;
  name: string;
  edge: string;
  serverName: string;
  caPem: string;
  identity: TlsIdentity;
  keepaliveMs?: number;
}

export interface AgentTenant {
  readonly id: string;
  /** Changed through Agent.setEnabled only. */
  readonly enabled: boolean;
  readonly settings: TenantSettings;
  readonly tunnel: TunnelClient;
  readonly segments: TunnelClient['segments'];
}

/**
 * The agent core: one Z-Tunnel per tenant and the routing of app names to them. Front ends
 * (proxies, DNS, kernel interception) only ever call `dial`.
 */
export interface AgentOptions {
  /** Synthetic IP range (default 100.64.0.0/10). */
  poolCidr?: string;
}

export class Agent extends EventEmitter<{ change: [] }> {
  private readonly tenantMap = new Map<string, AgentTenant & { enabled: boolean }>();
  /** The tenants turned on, worked out again only when a tenant comes, goes or is switched. */
  private enabledList: AgentTenant[] | null = null;
  /** One pool for all tenants, so a synthetic IP names one app of one tenant. */
  readonly pool: SyntheticPool;

  constructor(
    private readonly log: Logger,
    opts: AgentOptions = {},
  ) {
    super();
    this.pool = new SyntheticPool({ cidr: opts.poolCidr });
  }

  /** The tenant owning an app name, among the tenants turned on. */
  appFor(name: string): { tenant: string } | undefined {
    const route = routeName(this.enabledTenants(), name);
    return route ? { tenant: route.tenant.id } : undefined;
  }

  /** Whether the tenant's edge says the app resolves and is reachable (DNS answers depend on it). */
  async reachable(tenant: string, fqdn: string): Promise<boolean> {
    const t = this.tenantMap.get(tenant);
    if (!t?.enabled) return false;
    return (await t.tunnel.reach(fqdn)).ok;
  }

  /** The synthetic IPs handed out for a tenant's apps. */
  syntheticIps(tenant: string): Array<{ fqdn: string; ip: string }> {
    return this.pool
      .snapshot()
      .filter((m) => m.tenant === tenant)
      .map((m) => ({ fqdn: m.fqdn, ip: m.ip }));
  }

  get tenants(): AgentTenant[] {
    return [...this.tenantMap.values()];
  }

  /** The tenant with this id, if it is turned on. */
  enabledTenant(id: string): AgentTenant | undefined {
    const t = this.tenantMap.get(id);
    return t?.enabled ? t : undefined;
  }

  /** Asked on every DNS answer and every connection: no array is built per call. */
  private enabledTenants(): readonly AgentTenant[] {
    this.enabledList ??= this.tenants.filter((t) => t.enabled);
    return this.enabledList;
  }

  /** Microtunnels open on every tenant's Z-Tunnel. */
  get openMicrotunnels(): number {
    let n = 0;
    for (const t of this.tenantMap.values()) n += t.tunnel.openMicrotunnels;
    return n;
  }

  addTenant(settings: TenantSettings): AgentTenant {
    if (this.tenantMap.has(settings.id)) throw new Error(`tenant ${settings.id} is already configured`);
    const tunnel = new TunnelClient({ ...settings, tenant: settings.id, log: this.log.child({ tenant: settings.id }) });
    const tenant: AgentTenant & { enabled: boolean } = {
      id: settings.id,
      enabled: true,
      settings,
      tunnel,
      get segments() {
        return tunnel.segments;
      },
    };
    this.tenantMap.set(settings.id, tenant);
    this.enabledList = null;
    tunnel.on('status', () => this.emit('change'));
    tunnel.on('segments', () => this.emit('change'));
    tunnel.start();
    this.emit('change');
    return tenant;
  }

  removeTenant(id: string): void {
    this.tenantMap.get(id)?.tunnel.stop();
    this.tenantMap.delete(id);
    this.enabledList = null;
    this.emit('change');
  }

  /** Turns a tenant's Z-Tunnel off or on without forgetting it. */
  setEnabled(id: string, enabled: boolean): void {
    const t = this.tenantMap.get(id);
    if (!t) throw Object.assign(new Error(`no tenant ${id}`), { status: 404, code: 'not-found' });
    if (t.enabled === enabled) return;
    t.enabled = enabled;
    this.enabledList = null;
    if (enabled) t.tunnel.start();
    else t.tunnel.stop();
    this.emit('change');
  }

  stop(): void {
    for (const t of this.tenantMap.values()) t.tunnel.stop();
  }

  /** Opens a microtunnel to an app on the tenant that owns its name. */
  readonly dial: Dialer = Object.assign(
    async (target: DialTarget, signal?: AbortSignal): Promise<Duplex> => {
      const { stream, established } = this.open({ ...target, proto: 'tcp' });
      const onAbort = (): void => {
        stream.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await established;
        return stream;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    },
    { start: (target: DialTarget): StartedDial => this.open({ host: target.host, port: target.port, proto: 'tcp' }) },
  );

  /**
   * Opens a microtunnel without waiting for the far end: what is written to `stream` at once
   * travels as early data (the HTTP/2 stream takes it before the open is answered), and
   * `established` settles with the answer (DialError when refused). For front ends that hold
   * early data themselves, such as the kernel intercept, and for UDP (`proto: 'udp'`).
   */
  open(target: DialTarget & { proto: L4Protocol }): { stream: Duplex; established: Promise<void>; tenant: string; host: string } {
    // A client that resolved the name through our DNS connects to its synthetic IP.
    const mapped = this.pool.lookupIp(target.host);
    const host = mapped?.fqdn ?? target.host.toLowerCase().replace(/\.$/, '');
    const route = routeName(this.enabledTenants(), host);
    if (!route || (mapped && mapped.tenant !== route.tenant.id)) throw new DialError('not-an-app', `${target.host} is not an application of any tenant`);
    const { stream, established } = route.tenant.tunnel.open({ proto: target.proto, host, port: target.port });
    return { stream, established, tenant: route.tenant.id, host };
  }
}
