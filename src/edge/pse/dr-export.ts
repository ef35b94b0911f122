import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { writeFileAtomic } from '../ca/atomic-file.js';
import { issueServerCertificate, type CertificateAuthority, type TenantPki } from '../ca/tenant-pki.js';
import type { TenantConfig } from '../cloud-config.js';
import { DrBundle, type CachedAssertion, type DrBundleTenant } from './dr-bundle.js';

/** What the cloud hands to the export. */
export interface DrExportSource {
  infra: CertificateAuthority;
  tenants: Map<string, { config: TenantConfig; pki: TenantPki }>;
  /** Last assertions per tenant (a running cloud's auth store); none for an offline export. */
  assertions?: (tenant: string) => CachedAssertion[];
}

/** The PSE's server certificate, issued ahead of time by the infra CA. */
export interface PseCertRequest {
  name: string;
  /** Names and addresses agents and connectors dial the PSE by (default localhost, 127.0.0.1). */
  serverNames?: string[];
  validityDays?: number;
}

export interface DrExport {
  bundle: DrBundle;
  /** The PSE's private server key, PKCS#8 PEM: written 0600, never logged. */
  keyPem: string;
  warnings: string[];
}

/**
 * The DR-designated subset of one tenant. If the tenant designates connector groups for DR,
 * DR segments are served only through those; a DR segment with none of them cannot be served
 * and is left out, with a warning.
 */
export function drSubset(config: TenantConfig): { segments: DrBundleTenant['segments']; warnings: string[] } {
  const drGroups = new Set(config.connectorGroups.filter((g) => g.drEnabled).map((g) => g.id));
  const warnings: string[] = [];
  const segments = config.segments.flatMap((s) => {
    if (!s.drEnabled) return [];
    if (drGroups.size === 0) return [s];
    const groups = s.connectorGroups.filter((g) => drGroups.has(g));
    if (groups.length === 0) {
      warnings.push(`tenant ${config.id}: DR segment ${s.id} has no DR-designated connector group; left out of the DR bundle`);
      return [];
    }
    return [{ ...s, connectorGroups: groups }];
  });
  return { segments, warnings };
}

export async function exportDrBundle(src: DrExportSource, pse: PseCertRequest): Promise<DrExport> {
  const names = pse.serverNames ?? ['localhost', '127.0.0.1'];
  const server = await issueServerCertificate(src.infra, {
    name: pse.name,
    dnsNames: names.filter((n) => !isIP(n)),
    ipAddresses: names.filter((n) => isIP(n)),
    validityDays: pse.validityDays,
  });
  const warnings: string[] = [];
  const tenants: DrBundleTenant[] = [...src.tenants.values()].map(({ config, pki }) => {
    const subset = drSubset(config);
    warnings.push(...subset.warnings);
    return {
      id: config.id,
      name: config.name,
      segments: subset.segments,
      connectorGroups: config.connectorGroups.map((g) => ({ id: g.id, drEnabled: g.drEnabled })),
      policy: config.policy,
      ca: { rootPem: pki.root.certPem, clientCaPem: pki.client.certPem, connectorCaPem: pki.connector.certPem },
      assertions: src.assertions?.(config.id) ?? [],
    };
  });
  const bundle = DrBundle.parse({
    format: 'zcc-dr-bundle',
    version: 1,
    exportedAt: new Date().toISOString(),
    cloudCaPem: src.infra.certPem,
    pse: { name: pse.name, certChainPem: server.chainPem },
    tenants,
  });
  return { bundle, keyPem: server.keyPem, warnings };
}

/** Writes `dr-bundle.json` (0644) and `pse.key.pem` (0600) into `dir`, each atomically. */
export async function writeDrExport(dir: string, exp: DrExport): Promise<{ bundleFile: string; keyFile: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const bundleFile = join(dir, 'dr-bundle.json');
  const keyFile = join(dir, 'pse.key.pem');
  // Key first: a PSE that sees the new bundle must find the key its certificate certifies.
  await writeFileAtomic(keyFile, exp.keyPem, 0o600);
  await writeFileAtomic(bundleFile, JSON.stringify(exp.bundle, null, 2) + '\n', 0o644);
  return { bundleFile, keyFile };
}

/**
 * Re-exports every `intervalMs` while the cloud runs (seed 003: every 15 minutes), so the
 * PSEs' copy is at most that old when the cloud fails. Returns the stop function.
 */
export function exportDrPeriodically(run: () => Promise<DrExport>, dir: string, intervalMs: number, log: Logger): () => void {
  const once = (): void => {
    run()
      .then(async (exp) => {
        const files = await writeDrExport(dir, exp);
        for (const w of exp.warnings) log.warn(w);
        log.info({ ...files, tenants: exp.bundle.tenants.map((t) => ({ id: t.id, segments: t.segments.length, assertions: t.assertions.length })) }, 'DR bundle exported');
      })
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'DR bundle export failed'));
  };
  once();
  const timer = setInterval(once, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
