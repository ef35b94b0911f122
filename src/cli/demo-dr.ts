import { generateKeyPairSync } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentConfigInput } from '../agent/config/schema.js';
import type { Logger } from '../common/log.js';
import { Connector } from '../edge/connector/connector.js';
import { ConnectorConfig } from '../edge/connector/connector-config.js';
import { writeDrExport } from '../edge/pse/dr-export.js';
import { PseConfig } from '../edge/pse/pse-config.js';
import { startPse } from '../edge/pse/pse.js';
import { looksLikeDrRecord, toTxtStrings } from '../protocol/dr-record.js';
import { startDrDns, type DrZone } from './demo-dr-dns.js';
import type { DemoTenant, DemoTenantSpec } from './demo-tenant.js';

export const DEMO_DR_DOMAIN = 'dr.demo.internal';
/** The demo polls faster than the 4 minutes of production, so a trigger shows within seconds. */
export const DEMO_POLL_MS = 3_000;

/** `--dr`: the intranet and echo apps are DR-designated; the *.apps wildcard is not. */
export function markDrSegments(spec: DemoTenantSpec): void {
  for (const s of spec.segments) if (s.id === 'intranet' || s.id === 'echo') s.drEnabled = true;
}

/**
 * `zcc demo --dr`: a DR signing key, the DR bundle exported from the demo cloud, a private
 * service edge, the DR domain on a real DNS server (dnsmasq if installed) and a connector link
 * to the PSE. `agentDr` is the agent's `dr` configuration section for it (the agent polls every
 * DEMO_POLL_MS). Records are loaded by writing them to `records.txt`: the demo then restarts the
 * DNS server with them.
 */
export async function startDemoDr(opts: { tenant: DemoTenant; dataDir: string; log: Logger }): Promise<{ ready: Record<string, unknown>; agentDr: NonNullable<AgentConfigInput['dr']>; stop(): Promise<void> }> {
  const { tenant, log } = opts;
  const dir = join(opts.dataDir, 'dr');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stops: Array<() => Promise<void> | void> = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const keys = generateKeyPairSync('ed25519');
    const keyFile = join(dir, 'dr.key.pem');
    const pubFile = join(dir, 'dr.pub.pem');
    await writeFile(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    await writeFile(pubFile, publicKeyPem, { mode: 0o644 });

    // The PSEs (here one) are named by the DR domain's A records; no TXT record: DR off.
    const zone: DrZone = { domain: DEMO_DR_DOMAIN, txt: [], a: ['127.0.0.1'] };
    const dns = await startDrDns(zone);
    stops.push(() => dns.close());

    const files = await writeDrExport(join(dir, 'pse'), await tenant.cloud.exportDr({ name: 'demo-pse', serverNames: ['localhost', '127.0.0.1'] }));
    const pse = await startPse(
      PseConfig.parse({ name: 'demo-pse', listen: '127.0.0.1:0', ...files, dr: { domain: DEMO_DR_DOMAIN, resolvers: [dns.address], publicKeyFile: pubFile, pollMs: DEMO_POLL_MS } }),
      log.child({ proc: 'pse' }),
    );
    stops.push(() => pse.close());

    // The demo connector is already enrolled; this second Connector on its identity is exactly
    // what `dr.pseAddresses` in a connector config starts.
    const id = tenant.spec.id;
    const link = new Connector(
      ConnectorConfig.parse({
        name: `${id}-connector-1`,
        dataDir: join(opts.dataDir, `connector-${id}`),
        cloud: { tunnel: pse.tunnel, enroll: tenant.cloud.enroll, serverName: 'localhost', caFile: tenant.cloud.caFile },
        staticServers: tenant.spec.servers,
      }),
      log.child({ proc: `connector-${id}`, pse: pse.tunnel }),
    );
    void link.start().catch((err: unknown) => log.error({ err: (err as Error).message }, 'DR connector link failed'));
    stops.push(() => link.stop());

    const agentDr = { domain: DEMO_DR_DOMAIN, publicKey: publicKeyPem, resolvers: [dns.address], psePort: Number(pse.tunnel.split(':')[1]), requireSigned: true };

    const recordsFile = join(dir, 'records.txt');
    await writeFile(recordsFile, '', { mode: 0o600 });
    let loading = Promise.resolve();
    const reload = (): void => {
      loading = loading
        .then(async () => {
          const lines = (await readFile(recordsFile, 'utf8')).split('\n').map((l) => l.trim()).filter(looksLikeDrRecord);
          await dns.publish({ ...zone, txt: lines.map(toTxtStrings) });
          log.info({ records: lines.length, dns: dns.address }, 'DR domain records loaded');
        })
        .catch((err: unknown) => log.error({ err: (err as Error).message }, 'cannot load DR records'));
    };
    watchFile(recordsFile, { interval: 500 }, reload);
    stops.push(() => unwatchFile(recordsFile));
    stops.push(() => loading);

    const [host, port] = dns.address.split(':');
    const record = (mode: string): string => `zcc dr record --mode ${mode} --key ${keyFile} --domain ${DEMO_DR_DOMAIN} --format raw > ${recordsFile}`;
    return {
      agentDr,
      ready: {
        domain: DEMO_DR_DOMAIN,
        dns: dns.address,
        dnsServer: dns.kind,
        pse: pse.tunnel,
        publicKey: pubFile,
        privateKey: keyFile,
        drApps: tenant.spec.segments.filter((s) => s.drEnabled).map((s) => s.domains[0]),
        trigger: record('on'),
        end: record('off'),
        inspect: `dig @${host} -p ${port} TXT ${DEMO_DR_DOMAIN} +short`,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** After READY: the commands to trigger and end DR in the running demo. */
export function printDrDemoHelp(ready: Record<string, unknown>): void {
  const dr = ready.dr as Record<string, string> | undefined;
  if (!dr) return;
  console.log(`DR domain ${dr.domain} on ${dr.dnsServer} ${dr.dns}; private service edge ${dr.pse}; DR apps: ${String(dr.drApps)}`);
  console.log(`  start DR:  ${dr.trigger}`);
  console.log(`  end DR:    ${dr.end}`);
  console.log(`  no record: : > ${dr.trigger?.split('> ')[1] ?? 'records.txt'}   (missing record = off)`);
  console.log(`  look:      ${dr.inspect}`);
}
