import { EventEmitter } from 'node:events';
import type { Logger } from '../../common/log.js';
import type { TenantStatus } from '../../common/localapi-schema.js';
import type { Agent, AgentTenant } from '../agent.js';
import type { DrController } from '../dr/dr-controller.js';
import { tlsIdentityOf, type AgentState, type TenantRecord } from '../identity/agent-state.js';
import { watchAuthExpiry, type AuthExpiryWatch } from '../identity/login-expiry.js';
import { enrollWithTicket, reauthenticate } from '../identity/login-enroll.js';
import { CertificateRenewer } from '../identity/renewal.js';
import { enrollWithToken } from '../identity/token-enroll.js';
import { forwardingDecision, forwardingReason, type ForwardingDecision } from '../policy/forwarding.js';
import { sameConnection, type ResolvedTenant } from './runtime-config.js';
import type { TenantLogin } from './tenant-login.js';

interface Slot {
  cfg: ResolvedTenant;
  record?: TenantRecord;
  tenant?: AgentTenant;
  renewer?: CertificateRenewer;
  expiry?: AuthExpiryWatch;
  detachDr?: () => void;
  /** Why the tenant has no tunnel (enrollment failed, …). */
  error?: string;
}

export interface TenantSlotsOptions {
  agent: Agent;
  state: AgentState;
  fingerprint: string;
  device: string;
  log: Logger;
  login: TenantLogin;
  /** Set once when the runtime has a DR controller (tenants configured at start only). */
  dr?: () => DrController | undefined;
}

/**
 * The configured tenants and what this device holds for each: a sealed enrollment record, a
 * Z-Tunnel in the agent once enrolled, the certificate renewer and the auth-expiry watch.
 * `reconcile` makes the running set follow the configuration; tenants whose forwarding profile
 * says `direct` on this network keep their identity but have their tunnel turned off.
 */
export class TenantSlots extends EventEmitter<{ change: [] }> {
  private readonly slots = new Map<string, Slot>();
  private trusted = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: TenantSlotsOptions) {
    super();
  }

  get ids(): string[] {
    return [...this.slots.keys()];
  }

  /**
   * Makes the running tenants follow `wanted` (one job at a time). Tenants in `keep` are still
   * configured but could not be read this time (e.g. an unreadable CA file): left as they are,
   * never closed or forgotten over a bad file.
   */
  reconcile(wanted: ResolvedTenant[], keep: readonly string[] = []): Promise<void> {
    const run = this.queue.then(() => this.reconcileNow(wanted, keep));
    this.queue = run.catch(() => undefined);
    return run;
  }

  setTrusted(trusted: boolean): void {
    if (this.trusted === trusted) return;
    this.trusted = trusted;
    for (const slot of this.slots.values()) this.applyEnabled(slot);
    this.emit('change');
  }

  forwarding(id: string): ForwardingDecision | undefined {
    const slot = this.slots.get(id);
    return slot && forwardingDecision(slot.cfg.forwardingProfile, this.trusted);
  }

  /** Starts a sign-in: re-authentication when enrolled, else enrollment with the login ticket. */
  startLogin(id: string): Promise<string> {
    const slot = this.slots.get(id);
    if (!slot) throw Object.assign(new Error(`no tenant ${id}`), { status: 404, code: 'not-found' });
    return this.opts.login.start({
      tenant: slot.cfg,
      complete: async ({ ticket }) => {
        const current = this.slots.get(id);
        if (current !== slot) throw new Error(`tenant ${id} was removed during the sign-in`);
        if (slot.record && slot.tenant) {
          await reauthenticate({ ...this.endpoint(slot.cfg), identity: tlsIdentityOf(slot.record), ticket, fingerprint: this.opts.fingerprint, tunnel: slot.tenant.tunnel });
          // The edge renewed the auth record of the tunnel that is up; one that is down (refused,
          // backing off) tries again now rather than at its next backoff step.
          if (slot.tenant.tunnel.status.state !== 'connected') slot.tenant.tunnel.reconnect('signed in again');
        } else {
          const identity = await enrollWithTicket({ ...this.endpoint(slot.cfg), tenant: id, ticket, device: this.opts.device, fingerprint: this.opts.fingerprint });
          await this.store(slot, identity);
        }
        this.emit('change');
      },
    });
  }

  /** Enrolls a new tenant with an MDM token (local API addTenant), before it enters the config. */
  async enrollWithToken(cfg: ResolvedTenant, token: string): Promise<void> {
    const identity = await enrollWithToken({ ...this.endpoint(cfg), tenant: cfg.id, token, device: this.opts.device, fingerprint: this.opts.fingerprint });
    await this.opts.state.writeTenant(cfg.id, this.recordOf(cfg, identity));
  }

  statusExtras(id: string, managed: boolean, canToggle: boolean): Partial<TenantStatus> {
    const slot = this.slots.get(id);
    const fwd = this.forwarding(id);
    const dr = this.opts.dr?.()?.status(id);
    const extras: Partial<TenantStatus> = {
      ...(slot ? { enabled: slot.cfg.enabled } : {}),
      enrollment: slot?.record ? 'enrolled' : 'not-enrolled',
      managed,
      canToggle,
      ...(fwd ? { forwarding: { profile: fwd.profile, action: fwd.action, reason: forwardingReason(fwd) } } : {}),
      ...(dr ? { dr: { mode: dr.mode, active: dr.active, domain: dr.domain, activeSince: dr.activeSince, warnings: dr.warnings } } : {}),
    };
    if (dr?.active && slot?.tenant?.tunnel.status.state === 'connected') extras.connection = 'safe-mode';
    if (slot?.error) extras.error = slot.error;
    return extras;
  }

  /** Configured tenants without a tunnel: not enrolled on this device (yet). */
  pending(flags: () => { managed: boolean; canToggle: boolean }): TenantStatus[] {
    return [...this.slots.values()]
      .filter((s) => !s.tenant)
      .map((s) => ({
        id: s.cfg.id,
        name: s.cfg.name,
        connection: s.error ? ('error' as const) : ('disconnected' as const),
        error: s.error ?? `not enrolled on this device: sign in (zcc login --tenant ${s.cfg.id})`,
        needsReauth: true,
        bytesIn: 0,
        bytesOut: 0,
        segments: [],
        syntheticIps: [],
        ...this.statusExtras(s.cfg.id, flags().managed, flags().canToggle),
      }));
  }

  async stop(): Promise<void> {
    await this.queue;
    for (const slot of this.slots.values()) this.stopSlot(slot);
  }

  private endpoint(cfg: ResolvedTenant): { enroll: string; serverName: string; caPem: string } {
    return { enroll: cfg.enroll, serverName: cfg.serverName, caPem: cfg.caPem };
  }

  private recordOf(cfg: ResolvedTenant, identity: { keyPem: string; certPem: string; identityUri: string }): TenantRecord {
    return {
      tenant: cfg.id,
      name: cfg.name,
      edge: cfg.edge,
      enroll: cfg.enroll,
      serverName: cfg.serverName,
      caPem: cfg.caPem,
      keyPem: identity.keyPem,
      certChainPem: identity.certPem,
      identityUri: identity.identityUri,
      enrolledAt: new Date().toISOString(),
      tokens: {},
    };
  }

  private async store(slot: Slot, identity: { keyPem: string; certPem: string; identityUri: string }): Promise<void> {
    slot.record = await this.opts.state.writeTenant(slot.cfg.id, this.recordOf(slot.cfg, identity));
    slot.error = undefined;
    this.startTunnel(slot);
  }

  private async reconcileNow(wanted: ResolvedTenant[], keep: readonly string[]): Promise<void> {
    const { log } = this.opts;
    const ids = new Set([...wanted.map((t) => t.id), ...keep]);
    for (const [id, slot] of this.slots) {
      if (ids.has(id)) continue;
      this.stopSlot(slot);
      this.slots.delete(id);
      // Removed from the configuration: this device forgets the tenant's identity too.
      await this.opts.state.removeTenant(id);
      log.info({ tenant: id }, 'tenant removed from the configuration: tunnel closed, identity forgotten');
    }
    for (const cfg of wanted) {
      let slot = this.slots.get(cfg.id);
      if (slot && !sameConnection(slot.cfg, cfg)) {
        log.info({ tenant: cfg.id }, 'tenant settings changed: reconnecting');
        this.stopSlot(slot);
        this.slots.delete(cfg.id);
        slot = undefined;
      }
      if (slot) {
        slot.cfg = cfg;
        this.applyEnabled(slot);
        continue;
      }
      slot = { cfg };
      this.slots.set(cfg.id, slot);
      await this.bringUp(slot);
    }
    this.emit('change');
  }

  private async bringUp(slot: Slot): Promise<void> {
    const { cfg } = slot;
    const { log } = this.opts;
    try {
      slot.record = await this.opts.state.readTenant(cfg.id);
      if (slot.record && (slot.record.edge !== cfg.edge || slot.record.caPem !== cfg.caPem)) {
        // The record names the cloud it was issued by; the configuration may have moved the edge.
        slot.record = await this.opts.state.writeTenant(cfg.id, { ...slot.record, edge: cfg.edge, enroll: cfg.enroll, serverName: cfg.serverName, caPem: cfg.caPem });
      }
      if (!slot.record && cfg.enrollmentToken) {
        log.info({ tenant: cfg.id }, 'enrolling with the configured enrollment token');
        const identity = await enrollWithToken({ ...this.endpoint(cfg), tenant: cfg.id, token: cfg.enrollmentToken, device: this.opts.device, fingerprint: this.opts.fingerprint });
        await this.store(slot, identity);
        return;
      }
      if (slot.record) this.startTunnel(slot);
      else log.warn({ tenant: cfg.id }, 'tenant not enrolled on this device: waiting for a sign-in');
    } catch (err) {
      slot.error = `enrollment failed: ${(err as Error).message}`;
      log.error({ tenant: cfg.id, err: (err as Error).message }, 'cannot bring the tenant up');
    }
  }

  private startTunnel(slot: Slot): void {
    const record = slot.record!;
    const { log } = this.opts;
    const tenant = this.opts.agent.addTenant({ id: slot.cfg.id, name: slot.cfg.name, edge: slot.cfg.edge, serverName: slot.cfg.serverName, caPem: slot.cfg.caPem, identity: tlsIdentityOf(record) });
    slot.tenant = tenant;
    slot.expiry = watchAuthExpiry(tenant.tunnel, log.child({ tenant: slot.cfg.id }));
    slot.renewer = new CertificateRenewer({
      state: this.opts.state,
      tenant: slot.cfg.id,
      log,
      fingerprint: this.opts.fingerprint,
      onRenewed: (r) => {
        slot.record = r;
        tenant.tunnel.setIdentity(tlsIdentityOf(r));
      },
    });
    slot.renewer.start();
    this.attachDr(slot);
    this.applyEnabled(slot);
  }

  /** Hooks every tunnel up to the current DR controller (after it was replaced). */
  reattachDr(): void {
    for (const slot of this.slots.values()) this.attachDr(slot);
  }

  private attachDr(slot: Slot): void {
    slot.detachDr?.();
    slot.detachDr = undefined;
    const dr = this.opts.dr?.();
    if (slot.tenant && dr?.status(slot.cfg.id)) slot.detachDr = dr.attach(slot.cfg.id, slot.tenant.tunnel);
  }

  private applyEnabled(slot: Slot): void {
    if (!slot.tenant) return;
    const fwd = forwardingDecision(slot.cfg.forwardingProfile, this.trusted);
    const on = slot.cfg.enabled && fwd.action === 'tunnel';
    if (slot.tenant.enabled !== on) {
      this.opts.log.info({ tenant: slot.cfg.id, enabled: slot.cfg.enabled, forwarding: fwd.action, reason: forwardingReason(fwd) }, on ? 'tenant tunnel on' : 'tenant tunnel off');
      this.opts.agent.setEnabled(slot.cfg.id, on);
    }
  }

  private stopSlot(slot: Slot): void {
    slot.renewer?.stop();
    slot.expiry?.stop();
    slot.detachDr?.();
    if (slot.tenant) this.opts.agent.removeTenant(slot.cfg.id);
    slot.tenant = undefined;
  }
}
