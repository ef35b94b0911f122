import { readFile } from 'node:fs/promises';
import { createAgentClient } from '../common/localapi-client.js';
import { localApiSocket } from './status.js';

export interface TenantArgs {
  action: string | undefined;
  tenant?: string;
  name?: string;
  edge?: string;
  enroll?: string;
  serverName?: string;
  caFile?: string;
  token?: string;
  dataDir?: string;
}

function need(value: string | undefined, flag: string): string {
  if (!value) throw new Error(`zcc tenant add: ${flag} is required`);
  return value;
}

/** `zcc tenant add|remove|enable|disable`: manage the running agent's tenants. */
export async function tenantCommand(a: TenantArgs): Promise<void> {
  const client = createAgentClient({ socketPath: localApiSocket(a.dataDir) });
  const tenant = need(a.tenant, '--tenant');
  switch (a.action) {
    case 'add': {
      const caPem = await readFile(need(a.caFile, '--ca'), 'utf8');
      const out = await client.request('addTenant', {
        tenant,
        name: a.name ?? tenant,
        edge: need(a.edge, '--edge'),
        enroll: need(a.enroll, '--enroll'),
        serverName: a.serverName ?? 'localhost',
        caPem,
        token: need(a.token ?? process.env.ZCC_ENROLL_TOKEN, '--token (or ZCC_ENROLL_TOKEN)'),
      });
      console.log(`tenant ${out.tenant} added`);
      return;
    }
    case 'remove':
      await client.request('removeTenant', { tenant });
      console.log(`tenant ${tenant} removed`);
      return;
    case 'on':
    case 'off':
    case 'enable':
    case 'disable': {
      const enabled = a.action === 'on' || a.action === 'enable';
      await client.request('setTenantEnabled', { tenant, enabled });
      console.log(`tenant ${tenant} ${enabled ? 'on' : 'off'}`);
      return;
    }
    default:
      throw new Error('usage: zcc tenant add|remove|on|off --tenant ID [...]');
  }
}
