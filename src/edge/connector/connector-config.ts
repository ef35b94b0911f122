import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseConfig } from '../cloud-config.js';

export const ConnectorConfig = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  dataDir: z.string().min(1),
  cloud: z.strictObject({
    tunnel: z.string(),
    enroll: z.string(),
    /** Name the edge's certificate is checked against. */
    serverName: z.string().default('localhost'),
    /** The cloud's infrastructure CA, pinned: PEM text or a path to it. */
    caPem: z.string().optional(),
    caFile: z.string().optional(),
  }),
  /** One-time key for the first enrollment; ignored once enrolled. */
  provisioningKey: z.string().min(16).optional(),
  staticServers: z.record(z.string(), z.string()).default({}),
  connectTimeoutMs: z.number().int().min(100).default(10_000),
  healthIntervalMs: z.number().int().min(100).default(10_000),
  /**
   * Who carries the Z-Tunnel and its microtunnels: the native data plane (native/dataplane,
   * built with cc on first use; IPv4 app addresses only), this Node process, or `auto` (native
   * when it can be built, else node).
   */
  dataPlane: z.enum(['auto', 'node', 'native']).default('auto'),
  /**
   * Native data plane: how long a looked-up app address is reused before the process asks again
   * (a static entry naming an IPv4 address is kept for good). Every probe refreshes it; the
   * default matches the edge's probe cache.
   */
  resolveCacheMs: z.number().int().min(1).default(30_000),
  /**
   * Disaster recovery: this connector is DR-designated and also keeps a Z-Tunnel to each of these
   * private service edges ("host:port"), with the same certificate and CA pin as to the cloud.
   */
  dr: z.strictObject({ pseAddresses: z.array(z.string()).min(1), serverName: z.string().optional() }).optional(),
});
export type ConnectorConfig = z.infer<typeof ConnectorConfig>;
export type ConnectorConfigInput = z.input<typeof ConnectorConfig>;

export function loadConnectorConfig(file: string): ConnectorConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return parseConfig(ConnectorConfig, raw, file);
}

export function pinnedCa(cfg: ConnectorConfig): string {
  if (cfg.cloud.caPem) return cfg.cloud.caPem;
  if (cfg.cloud.caFile) return readFileSync(cfg.cloud.caFile, 'utf8');
  throw new Error('connector config: cloud.caPem or cloud.caFile is required (the cloud CA to pin)');
}
