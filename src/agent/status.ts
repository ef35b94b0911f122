import type { AgentStatus, ConnectionState, TenantStatus } from '../common/localapi-schema.js';
import type { AppSegment } from '../protocol/segments.js';
import type { TunnelStatus } from './tunnel/tunnel-client.js';

export interface TenantFacts {
  id: string;
  name: string;
  enabled: boolean;
  tunnel: TunnelStatus;
  segments: readonly AppSegment[];
  bytes: { in: number; out: number };
  syntheticIps: Array<{ fqdn: string; ip: string }>;
}

/** Whether the user must log in again: auth expired, or the edge refused for that reason. */
export function needsReauth(authExpiresAt: string | undefined, now: number, lastError?: string): boolean {
  if (lastError?.includes('needs-reauth')) return true;
  return authExpiresAt !== undefined && Date.parse(authExpiresAt) <= now;
}

function connectionOf(t: TenantFacts): ConnectionState {
  if (!t.enabled) return 'disconnected';
  return t.tunnel.state;
}

/** The agent's state as the local API, the CLI and the tray show it: a pure function of facts. */
export function tenantStatus(t: TenantFacts, now: number): TenantStatus {
  const session = t.tunnel.session;
  return {
    id: t.id,
    name: t.name,
    connection: connectionOf(t),
    enabled: t.enabled,
    error: t.tunnel.error,
    user: session?.user,
    authExpiresAt: session?.authExpiresAt,
    needsReauth: needsReauth(session?.authExpiresAt, now, t.tunnel.error),
    edge: t.tunnel.edge,
    connectedSince: t.tunnel.state === 'connected' ? t.tunnel.connectedSince?.toISOString() : undefined,
    bytesIn: t.bytes.in,
    bytesOut: t.bytes.out,
    segments: t.segments.map((s) => ({ id: s.id, name: s.name, domains: [...s.domains], tcpPorts: [...s.tcpPorts], udpPorts: [...s.udpPorts] })),
    syntheticIps: t.syntheticIps,
  };
}

export function agentStatus(version: string, fingerprintHash: string | undefined, tenants: TenantFacts[], safeMode: boolean, now = Date.now()): AgentStatus {
  return { version, fingerprintHash, tenants: tenants.map((t) => tenantStatus(t, now)), safeMode };
}
