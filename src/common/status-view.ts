/**
 * Facts derived from an AgentStatus that the tray (main process) and the window (renderer)
 * must agree on. Pure, no Node or DOM APIs.
 */
import type { AgentStatus, ConnectionState, TenantStatus } from './localapi-schema.js';

/** The tenant runs on a private service edge under disaster recovery (Safe Mode). */
export function tenantInSafeMode(t: TenantStatus): boolean {
  return t.connection === 'safe-mode' || t.dr?.active === true;
}

/** Safe Mode anywhere: the agent says so, or a tenant's DR is active. */
export function agentInSafeMode(status: AgentStatus): boolean {
  return status.safeMode || status.tenants.some(tenantInSafeMode);
}

/** The device holds no certificate for this tenant: the user must sign in (enroll). */
export function tenantNotEnrolled(t: TenantStatus): boolean {
  return t.enrollment === 'not-enrolled';
}

/** A sign-in is required before the tenant's apps can be reached. */
export function tenantNeedsSignIn(t: TenantStatus): boolean {
  return t.needsReauth || tenantNotEnrolled(t);
}

/**
 * Whether the tenant is switched on. Agents before `enabled` was in the status report a tenant
 * turned off as `disconnected`; for them that is the best guess.
 */
export function tenantIsOn(t: TenantStatus): boolean {
  return t.enabled ?? t.connection !== 'disconnected';
}

/** The user may turn the tenant off and on: the policy allows it and it is enrolled. */
export function tenantCanToggle(t: TenantStatus): boolean {
  return t.canToggle !== false && !tenantNotEnrolled(t);
}

/** App traffic of this tenant bypasses the tunnel on the current network. */
export function tenantForwardsDirect(t: TenantStatus): boolean {
  return t.forwarding?.action === 'direct';
}

/** Why traffic goes direct, in a few words: "trusted network" or "forwarding profile never". */
export function directReason(t: TenantStatus): string {
  return t.forwarding?.profile === 'never' ? 'forwarding profile never' : 'trusted network';
}

const CONNECTION_LABELS: Record<ConnectionState, string> = {
  disconnected: 'Disconnected',
  connecting: 'Connecting…',
  authenticating: 'Signing in…',
  connected: 'Connected',
  'safe-mode': 'Safe mode',
  error: 'Error',
};

/** The words for a connection state, the same in the tray menu and the window. */
export function connectionLabel(state: ConnectionState): string {
  return CONNECTION_LABELS[state];
}
