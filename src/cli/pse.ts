import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../common/log.js';
import { loadOrCreateInfraCa, loadOrCreateMasterKey, loadOrCreateTenantPki } from '../edge/ca/ca-store.js';
import { loadCloudConfig } from '../edge/cloud-config.js';
import { exportDrBundle, writeDrExport } from '../edge/pse/dr-export.js';
import { loadPseConfig } from '../edge/pse/pse-config.js';
import { startPse, type RunningPse } from '../edge/pse/pse.js';

/** `zcc pse --config FILE`: a private service edge; logs to `logFile` when set (local logging only). */
export async function pseCommand(configFile: string | undefined): Promise<RunningPse> {
  if (!configFile) throw new Error('zcc pse: --config FILE is required');
  const cfg = loadPseConfig(configFile);
  const log: Logger = createLogger({ name: 'zcc-pse', destination: cfg.logFile ? createWriteStream(cfg.logFile, { flags: 'a', mode: 0o600 }) : undefined });
  return startPse(cfg, log);
}

/**
 * `zcc cloud export-dr --config FILE --out DIR [--pse-name NAME] [--pse-server-name N]...`:
 * the DR bundle from the cloud's config and CA stores, without a running cloud. It cannot
 * include last assertions (they live in the running cloud's memory); for those, set `dr.exportDir`
 * in the cloud config and the running cloud exports every 15 minutes.
 */
export async function exportDrCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      out: { type: 'string' },
      'pse-name': { type: 'string' },
      'pse-server-name': { type: 'string', multiple: true },
    },
  });
  if (!values.config || !values.out) throw new Error('zcc cloud export-dr: --config FILE and --out DIR are required');
  const cfg = loadCloudConfig(values.config);
  const masterKey = await loadOrCreateMasterKey(join(cfg.dataDir, 'master.key'));
  const infra = await loadOrCreateInfraCa(join(cfg.dataDir, 'infra-ca'), masterKey);
  const tenants = new Map<string, { config: (typeof cfg.tenants)[number]; pki: Awaited<ReturnType<typeof loadOrCreateTenantPki>> }>();
  for (const config of cfg.tenants) tenants.set(config.id, { config, pki: await loadOrCreateTenantPki(join(cfg.dataDir, 'tenants', config.id, 'ca'), config.id, masterKey) });
  const exp = await exportDrBundle(
    { infra, tenants },
    { name: values['pse-name'] ?? cfg.dr?.pseName ?? 'pse', serverNames: values['pse-server-name'] ?? cfg.dr?.pseServerNames },
  );
  for (const w of exp.warnings) console.error(`zcc: warning: ${w}`);
  const files = await writeDrExport(values.out, exp);
  console.log(`DR bundle ${files.bundleFile}`);
  console.log(`PSE key   ${files.keyFile} (0600)`);
  for (const t of exp.bundle.tenants) console.log(`tenant ${t.id}: ${t.segments.length} DR segment(s): ${t.segments.map((s) => s.id).join(', ') || '-'}`);
  console.log('no last assertions in an offline export: set dr.exportDir in the cloud config to include them');
}
