import { readFile } from 'node:fs/promises';
import type { DrSettingsInput } from '../dr/dr-config.js';
import { parsePublicKey, type AgentConfig, type AgentTenantConfig } from '../config/schema.js';

/** A configured tenant with its pinned CA read: what enrollment and the Z-Tunnel need. */
export interface ResolvedTenant {
  id: string;
  name: string;
  edge: string;
  enroll: string;
  serverName: string;
  caPem: string;
  enrollmentToken?: string;
  enabled: boolean;
  forwardingProfile: AgentTenantConfig['forwardingProfile'];
}

export async function resolveTenant(t: AgentTenantConfig): Promise<ResolvedTenant> {
  let caPem = t.cloud.caPem;
  if (caPem === undefined) {
    const file = t.cloud.caFile!;
    try {
      caPem = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`tenants.${t.id}.cloud.caFile: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (!caPem.includes('BEGIN CERTIFICATE')) throw new Error(`tenants.${t.id}.cloud.caFile: ${file} holds no PEM certificate`);
  }
  return {
    id: t.id,
    name: t.name,
    edge: t.cloud.edge,
    enroll: t.cloud.enroll,
    serverName: t.cloud.serverName,
    caPem,
    enrollmentToken: t.enrollmentToken,
    enabled: t.enabled,
    forwardingProfile: t.forwardingProfile,
  };
}

/** Whether a change of these settings needs the tenant's tunnel rebuilt. */
export function sameConnection(a: ResolvedTenant, b: ResolvedTenant): boolean {
  return a.edge === b.edge && a.enroll === b.enroll && a.serverName === b.serverName && a.caPem === b.caPem && a.name === b.name;
}

/** The agent configuration's DR section in the DR controller's terms (one DR domain, every tenant). */
export function drSettingsOf(dr: NonNullable<AgentConfig['dr']>): DrSettingsInput {
  return {
    domain: dr.domain,
    resolvers: dr.resolvers,
    ...(dr.requireSigned ? { publicKeyPem: parsePublicKey(dr.publicKey).export({ type: 'spki', format: 'pem' }).toString() } : { unsigned: true }),
    pollMs: dr.pollIntervalSeconds * 1000,
    psePort: dr.psePort,
    inTestGroup: dr.testGroup,
    maxAuthAgeHours: dr.maxAssertionAgeHours,
  };
}

/** The kernel intercept's idle limits from the configuration's `timeouts`, in milliseconds. */
export function interceptTimeoutsOf(config: AgentConfig): { tcpOpenIdleMs: number; tcpHalfClosedIdleMs: number; udpIdleMs: number } {
  const t = config.timeouts;
  return { tcpOpenIdleMs: t.tcpOpenIdleSeconds * 1000, tcpHalfClosedIdleMs: t.tcpHalfClosedIdleSeconds * 1000, udpIdleMs: t.udpIdleSeconds * 1000 };
}
