import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import type { z } from 'zod';
import { CloudConfig, type CloudConfigInput, type CloudSegment } from '../edge/cloud-config.js';
import { startCloud, type RunningCloud } from '../edge/cloud.js';
import { Connector } from '../edge/connector/connector.js';
import { ConnectorConfig } from '../edge/connector/connector-config.js';

type SegmentInput = Omit<z.input<typeof CloudSegment>, 'connectorGroups'>;

export interface DemoTenantSpec {
  id: string;
  name: string;
  user: string;
  groups: string[];
  segments: SegmentInput[];
  /** Connector static servers: where the connector finds each app on this machine. */
  servers: Record<string, string>;
}

export interface DemoTenant {
  spec: DemoTenantSpec;
  cloud: RunningCloud;
  connector: Connector;
  /** MDM-style enrollment token of the demo user. */
  token: string;
  /** The demo user's password at this tenant's demo IdP (random per run). */
  password: string;
  stop(): Promise<void>;
}

/**
 * One demo organisation: its own cloud instance (CAs, enrollment, edge), one connector and a
 * policy that lets its demo user reach its apps. A second one is a partner tenant.
 */
export async function startDemoTenant(spec: DemoTenantSpec, dataDir: string, log: Logger): Promise<DemoTenant> {
  const provisioningKey = randomBytes(24).toString('base64url');
  const token = randomBytes(24).toString('base64url');
  const password = `demo-${randomBytes(9).toString('base64url')}`;
  const input: CloudConfigInput = {
    name: `${spec.id}-edge`,
    dataDir: join(dataDir, `cloud-${spec.id}`),
    listen: { tunnel: '127.0.0.1:0', enroll: '127.0.0.1:0', idp: '127.0.0.1:0' },
    tenants: [
      {
        id: spec.id,
        name: spec.name,
        segments: spec.segments.map((s) => ({ ...s, connectorGroups: [`${spec.id}-dc`] })),
        connectorGroups: [{ id: `${spec.id}-dc`, provisioningKeys: [provisioningKey] }],
        policy: { matchMode: 'first-match', rules: spec.groups.map((g) => ({ id: `allow-${g}`, name: `${g} reach ${spec.name} apps`, action: 'allow' as const, groups: [g] })) },
        enrollmentTokens: [{ token, user: spec.user, groups: spec.groups }],
        idp: { demoUsers: [{ user: spec.user, password, groups: spec.groups }] },
      },
    ],
  };
  const cfg = CloudConfig.parse(input);
  await writeFile(join(dataDir, `cloud-${spec.id}.json`), JSON.stringify(cfg, null, 2), { mode: 0o600 });
  const cloud = await startCloud(cfg, log.child({ proc: `cloud-${spec.id}` }));
  try {
    const connector = new Connector(
      ConnectorConfig.parse({
        name: `${spec.id}-connector-1`,
        dataDir: join(dataDir, `connector-${spec.id}`),
        cloud: { tunnel: cloud.tunnel, enroll: cloud.enroll, serverName: 'localhost', caFile: cloud.caFile },
        provisioningKey,
        staticServers: spec.servers,
      }),
      log.child({ proc: `connector-${spec.id}` }),
    );
    await connector.start();
    return {
      spec,
      cloud,
      connector,
      token,
      password,
      async stop() {
        await connector.stop();
        await cloud.close();
      },
    };
  } catch (err) {
    await cloud.close();
    throw err;
  }
}
