import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import type { LogRing } from '../common/log-ring.js';
import type { AgentStatus, LocalApiHandlers, LocalApiRequest, Setting, TenantStatus } from '../common/localapi-schema.js';
import type { TlsIdentity } from '../protocol/tls.js';
import type { Agent } from './agent.js';
import { LocalApiServer } from './localapi/server.js';
import { agentStatus, type TenantFacts } from './status.js';

export const AGENT_VERSION = '0.1.0';

/** What a full agent runtime adds to the plain agent's status (configuration, policy, DR). */
export interface StatusExtras {
  /** Per-tenant fields (enrollment, forwarding, DR, managed) merged into each tenant's status. */
  tenant?(id: string): Partial<TenantStatus>;
  /** Configured tenants the agent has no tunnel for yet (not enrolled on this device). */
  pendingTenants?(): TenantStatus[];
  agent?(): Pick<AgentStatus, 'config' | 'network'> & { safeMode?: boolean };
}

/** Tenant management when a runtime owns the configuration (managed tenants, user config). */
export interface TenantControl {
  add(req: LocalApiRequest<'addTenant'>): Promise<void>;
  remove(tenant: string): Promise<void>;
  setEnabled(tenant: string, enabled: boolean): Promise<void>;
}

export interface SettingsControl {
  list(): Setting[];
  set(key: string, value: unknown): Promise<unknown>;
}

export interface ServiceOptions {
  agent: Agent;
  log: Logger;
  socketPath: string;
  stateDir: string;
  fingerprintHash?: string;
  operatorGid?: number;
  /** Synthetic IP map of a tenant, once DNS interception runs. */
  syntheticIps?: (tenant: string) => Array<{ fqdn: string; ip: string }>;
  /** Enrolls this device with a new tenant's cloud; the key pair is generated locally. */
  enroll?: (req: LocalApiRequest<'addTenant'>) => Promise<TlsIdentity>;
  /** Forgets a tenant's stored identity (sealed state), after its tunnel is closed. */
  forget?: (tenant: string) => Promise<void>;
  /** Starts a re-authentication of a tenant; returns the URL for the user's browser. */
  reauth?: (tenant: string) => Promise<string | undefined>;
  extras?: StatusExtras;
  tenants?: TenantControl;
  settings?: SettingsControl;
  /** Recent log lines for the diagnostics view. */
  logs?: LogRing;
  /** Something other than the agent changed (config, network, DR): watchers get a new status. */
  changes?: { on(event: 'change', fn: () => void): unknown; off(event: 'change', fn: () => void): unknown };
}

const notFound = (tenant: string): Error => Object.assign(new Error(`no tenant ${tenant}`), { status: 404, code: 'not-found' });
const unsupported = (what: string): Error => Object.assign(new Error(`${what} is not configured for this agent`), { status: 501, code: 'unsupported' });

/** The agent as a service: its state as data, served to the tray and the CLI over the local API. */
export class AgentService {
  private readonly api: LocalApiServer;

  constructor(private readonly opts: ServiceOptions) {
    this.api = new LocalApiServer({
      socketPath: opts.socketPath,
      handlers: this.handlers(),
      status: () => this.status(),
      subscribe: (fn) => {
        opts.agent.on('change', fn);
        opts.changes?.on('change', fn);
        return () => {
          opts.agent.off('change', fn);
          opts.changes?.off('change', fn);
        };
      },
      operatorGid: opts.operatorGid,
      log: opts.log.child({ component: 'localapi' }),
    });
  }

  start(): Promise<void> {
    return this.api.listen();
  }

  stop(): Promise<void> {
    return this.api.close();
  }

  status(): AgentStatus {
    const facts: TenantFacts[] = this.opts.agent.tenants.map((t) => ({
      id: t.id,
      name: t.settings.name,
      enabled: t.enabled,
      tunnel: t.tunnel.status,
      segments: t.segments,
      bytes: t.tunnel.bytes,
      syntheticIps: this.opts.syntheticIps?.(t.id) ?? [],
    }));
    const { extras } = this.opts;
    const agentExtras = extras?.agent?.() ?? {};
    const base = agentStatus(AGENT_VERSION, this.opts.fingerprintHash, facts, agentExtras.safeMode ?? false);
    const tenants = [...base.tenants.map((t) => ({ ...t, ...extras?.tenant?.(t.id) })), ...(extras?.pendingTenants?.() ?? [])];
    const { safeMode: _safe, ...rest } = agentExtras;
    return { ...base, ...rest, tenants };
  }

  private hasTenant(tenant: string): boolean {
    return this.status().tenants.some((t) => t.id === tenant);
  }

  private handlers(): LocalApiHandlers {
    const { opts } = this;
    return {
      status: async () => this.status(),
      reauth: async ({ tenant }) => {
        if (!this.hasTenant(tenant)) throw notFound(tenant);
        if (!opts.reauth) throw unsupported('re-authentication');
        const loginUrl = await opts.reauth(tenant);
        return { tenant, started: true, loginUrl };
      },
      addTenant: async (req) => {
        if (this.hasTenant(req.tenant)) throw Object.assign(new Error(`tenant ${req.tenant} is already configured`), { status: 409, code: 'exists' });
        if (opts.tenants) {
          await opts.tenants.add(req);
        } else {
          if (!opts.enroll) throw unsupported('adding tenants');
          const identity = await opts.enroll(req);
          opts.agent.addTenant({ id: req.tenant, name: req.name, edge: req.edge, serverName: req.serverName, caPem: req.caPem, identity });
        }
        opts.log.info({ tenant: req.tenant, edge: req.edge }, 'tenant added');
        return { tenant: req.tenant, added: true };
      },
      removeTenant: async ({ tenant }) => {
        if (!this.hasTenant(tenant)) throw notFound(tenant);
        if (opts.tenants) {
          await opts.tenants.remove(tenant);
        } else {
          opts.agent.removeTenant(tenant);
          await opts.forget?.(tenant);
        }
        opts.log.info({ tenant }, 'tenant removed');
        return { tenant, removed: true };
      },
      setTenantEnabled: async ({ tenant, enabled }) => {
        if (opts.tenants) await opts.tenants.setEnabled(tenant, enabled);
        else opts.agent.setEnabled(tenant, enabled);
        return { tenant, enabled };
      },
      settings: async () => ({ settings: opts.settings?.list() ?? [] }),
      setSetting: async ({ key, value }) => {
        if (!opts.settings) throw unsupported('changing settings');
        return { key, value: await opts.settings.set(key, value) };
      },
      diagnostics: async ({ limit }) => ({
        version: AGENT_VERSION,
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        fingerprintHash: opts.fingerprintHash,
        logs: opts.logs?.recent(limit ?? 200) ?? [],
      }),
      exportDiagnostics: async () => {
        // Status and the redacted log ring only: they hold no key, token or assertion by construction.
        const body = JSON.stringify(
          { exportedAt: new Date().toISOString(), node: process.version, platform: process.platform, status: this.status(), logs: opts.logs?.recent(1000) ?? [] },
          null,
          2,
        );
        const path = join(opts.stateDir, `diagnostics-${Date.now()}.json`);
        await writeFile(path, body, { mode: 0o600 });
        return { path, bytes: Buffer.byteLength(body) };
      },
    };
  }
}
