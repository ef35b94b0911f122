import type { Duplex } from 'node:stream';
import type { Logger } from '../common/log.js';
import type { TlsIdentity } from '../protocol/tls.js';
import { DialError, type Dialer, type DialTarget } from './intercept/dialer.js';
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
  readonly settings: TenantSettings;
  readonly tunnel: TunnelClient;
  readonly segments: TunnelClient['segments'];
}

/**
 * The agent core: one Z-Tunnel per tenant and the routing of app names to them. Front ends
 * (proxies, DNS, kernel interception) only ever call `dial`.
 */
export class Agent {
  private readonly tenantMap = new Map<string, AgentTenant>();

  constructor(private readonly log: Logger) {}

  get tenants(): AgentTenant[] {
    return [...this.tenantMap.values()];
  }

  addTenant(settings: TenantSettings): AgentTenant {
    if (this.tenantMap.has(settings.id)) throw new Error(`tenant ${settings.id} is already configured`);
    const tunnel = new TunnelClient({ ...settings, tenant: settings.id, log: this.log.child({ tenant: settings.id }) });
    const tenant: AgentTenant = {
      id: settings.id,
      settings,
      tunnel,
      get segments() {
        return tunnel.segments;
      },
    };
    this.tenantMap.set(settings.id, tenant);
    tunnel.start();
    return tenant;
  }

  removeTenant(id: string): void {
    this.tenantMap.get(id)?.tunnel.stop();
    this.tenantMap.delete(id);
  }

  stop(): void {
    for (const t of this.tenantMap.values()) t.tunnel.stop();
  }

  /** Opens a microtunnel to an app on the tenant that owns its name. */
  readonly dial: Dialer = async (target: DialTarget, signal?: AbortSignal): Promise<Duplex> => {
    const route = routeName(this.tenants, target.host);
    if (!route) throw new DialError('not-an-app', `${target.host} is not an application of any tenant`);
    const { stream, established } = route.tenant.tunnel.open({ proto: 'tcp', host: target.host.toLowerCase().replace(/\.$/, ''), port: target.port });
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
  };
}
