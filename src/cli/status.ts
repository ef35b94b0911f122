import { join } from 'node:path';
import { createAgentClient } from '../common/localapi-client.js';
import { LOCALAPI_DEFAULT_SOCKET, LOCALAPI_SOCKET_ENV, type AgentStatus } from '../common/localapi-schema.js';

/** Which agent to ask: a demo's (by its data dir), the one named in the environment, or the system's. */
export function localApiSocket(dataDir?: string): string {
  if (dataDir) return join(dataDir, 'agent', 'localapi.sock');
  return process.env[LOCALAPI_SOCKET_ENV] ?? LOCALAPI_DEFAULT_SOCKET;
}

function human(s: AgentStatus): string {
  const lines = [`zcc agent ${s.version}${s.safeMode ? '  SAFE MODE' : ''}`];
  if (s.config?.lastError) lines.push(`configuration error: ${s.config.lastError.message} (using the last good configuration)`);
  if (s.network) lines.push(`network: ${s.network.type}${s.network.matched.length ? ` (${s.network.matched.join(', ')})` : ''}`);
  for (const t of s.tenants) {
    const auth = t.needsReauth ? 'needs re-authentication' : t.authExpiresAt ? `auth until ${t.authExpiresAt}` : '';
    lines.push(`${t.id} (${t.name}): ${t.connection}${t.error ? ` — ${t.error}` : ''}${t.managed ? '  (managed)' : ''}`);
    if (t.forwarding) lines.push(`  forwarding: ${t.forwarding.reason}`);
    if (t.dr) lines.push(`  disaster recovery: ${t.dr.mode}${t.dr.active ? ' (SAFE MODE)' : ''}`);
    lines.push(`  user ${t.user ?? '-'}  edge ${t.edge ?? '-'}  ${auth}`);
    lines.push(`  bytes in ${t.bytesIn}  out ${t.bytesOut}`);
    for (const seg of t.segments) lines.push(`  app ${seg.name}: ${seg.domains.join(', ')}`);
    for (const m of t.syntheticIps) lines.push(`  ${m.ip}  ${m.fqdn}`);
  }
  return lines.join('\n');
}

/** `zcc status [--json] [--data-dir DIR]`. */
export async function printStatus(opts: { json?: boolean; dataDir?: string; socket?: string }): Promise<void> {
  const socketPath = opts.socket ?? localApiSocket(opts.dataDir);
  const client = createAgentClient({ socketPath });
  let status: AgentStatus;
  try {
    status = await client.request('status', {});
  } catch (err) {
    throw new Error(`cannot reach the agent at ${socketPath}: ${(err as Error).message}`);
  }
  console.log(opts.json ? JSON.stringify(status, null, 2) : human(status));
}
