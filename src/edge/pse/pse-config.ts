import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parseConfig } from '../cloud-config.js';

/** `zcc pse --config FILE`. Relative paths are taken from the config file's directory. */
export const PseConfig = z.strictObject({
  name: z.string().min(1).default('pse-1'),
  listen: z.string().default('127.0.0.1:443'),
  /** The DR bundle exported by the cloud (`zcc cloud export-dr`) and the PSE's server key. */
  bundleFile: z.string().min(1),
  keyFile: z.string().min(1),
  dr: z
    .strictObject({
      domain: z.string().min(1),
      /** "ip" or "ip:port"; default: the system's resolvers. */
      resolvers: z.array(z.string().min(1)).min(1).optional(),
      /** The DR tool's Ed25519 public key (PEM file); records must be signed by it. */
      publicKeyFile: z.string().optional(),
      /** Running without a key must be asked for explicitly. */
      unsigned: z.boolean().default(false),
      pollMs: z.number().int().min(50).default(4 * 60_000),
      lookupTimeoutMs: z.number().int().min(50).default(3_000),
    })
    .refine((d) => !!d.publicKeyFile !== d.unsigned, { message: 'set exactly one of publicKeyFile or unsigned: true' }),
  /** How long a cached assertion stays valid after DR starts. */
  maxAuthAgeHours: z.number().positive().default(24),
  probeCacheSeconds: z.number().min(0).default(30),
  /** Local log file (DR: no log forwarding to the cloud); default stderr. */
  logFile: z.string().optional(),
});
export type PseConfig = z.infer<typeof PseConfig>;
export type PseConfigInput = z.input<typeof PseConfig>;

export function loadPseConfig(file: string): PseConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const cfg = parseConfig(PseConfig, raw, file);
  const base = dirname(resolve(file));
  const abs = (p: string): string => resolve(base, p);
  return {
    ...cfg,
    bundleFile: abs(cfg.bundleFile),
    keyFile: abs(cfg.keyFile),
    logFile: cfg.logFile && abs(cfg.logFile),
    dr: { ...cfg.dr, publicKeyFile: cfg.dr.publicKeyFile && abs(cfg.dr.publicKeyFile) },
  };
}
