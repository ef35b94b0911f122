import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import type { AgentStatus, LocalApiHandlers, LocalApiRequest } from '../common/localapi-schema.js';
import type { TlsIdentity } from '../protocol/tls.js';
import type { Agent } from './agent.js';
import { LocalApiServer } from './localapi/server.js';
import { agentStatus, type TenantFacts } from './status.js';

export const AGENT_VERSION = '0.1.0';

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
}

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
        return () => opts.agent.off('change', fn);
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
    return agentStatus(AGENT_VERSION, this.opts.fingerprintHash, facts, false);
  }

  private handlers(): LocalApiHandlers {
    return {
      status: async () => this.status(),
      reauth: async ({ tenant }) => {
        if (!this.opts.agent.tenants.some((t) => t.id === tenant)) throw Object.assign(new Error(`no tenant ${tenant}`), { status: 404, code: 'not-found' });
        if (!this.opts.reauth) throw Object.assign(new Error('re-authentication is not configured for this agent'), { status: 501, code: 'unsupported' });
        const loginUrl = await this.opts.reauth(tenant);
        return { tenant, started: true, loginUrl };
      },
      addTenant: async (req) => {
        if (this.opts.agent.tenants.some((t) => t.id === req.tenant)) throw Object.assign(new Error(`tenant ${req.tenant} is already configured`), { status: 409, code: 'exists' });
        if (!this.opts.enroll) throw Object.assign(new Error('adding tenants is not configured for this agent'), { status: 501, code: 'unsupported' });
        const identity = await this.opts.enroll(req);
        this.opts.agent.addTenant({ id: req.tenant, name: req.name, edge: req.edge, serverName: req.serverName, caPem: req.caPem, identity });
        this.opts.log.info({ tenant: req.tenant, edge: req.edge }, 'tenant added');
        return { tenant: req.tenant, added: true };
      },
      removeTenant: async ({ tenant }) => {
        if (!this.opts.agent.tenants.some((t) => t.id === tenant)) throw Object.assign(new Error(`no tenant ${tenant}`), { status: 404, code: 'not-found' });
        this.opts.agent.removeTenant(tenant);
        await this.opts.forget?.(tenant);
        this.opts.log.info({ tenant }, 'tenant removed');
        return { tenant, removed: true };
      },
      setTenantEnabled: async ({ tenant, enabled }) => {
        this.opts.agent.setEnabled(tenant, enabled);
        return { tenant, enabled };
      },
      exportDiagnostics: async () => {
        // Status only: it holds no key, token or assertion by construction.
        const body = JSON.stringify({ exportedAt: new Date().toISOString(), node: process.version, platform: process.platform, status: this.status() }, null, 2);
        const path = join(this.opts.stateDir, `diagnostics-${Date.now()}.json`);
        await writeFile(path, body, { mode: 0o600 });
        return { path, bytes: Buffer.byteLength(body) };
      },
    };
  }
}
