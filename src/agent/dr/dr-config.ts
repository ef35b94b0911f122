import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/**
 * A tenant's disaster-recovery settings on the agent (pushed by the admin ahead of time, like the
 * rest of the tenant config). Only the DR tool's public key is ever configured here.
 */
export const DrSettings = z
  .strictObject({
    /** The customer's DR domain: its TXT records carry the trigger, its A records the PSEs. */
    domain: z.string().regex(/^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$/i, 'expected a domain name'),
    /** Resolvers to ask ("ip" or "ip:port", IPv6 as "[addr]:port"); default: the system's. */
    resolvers: z.array(z.string().min(1)).min(1).optional(),
    /** Ed25519 public key (PEM) of the DR tool: records must then be signed by it. */
    publicKeyPem: z.string().optional(),
    /** Running without a key must be asked for: a forgotten key must not mean "accept anything". */
    unsigned: z.boolean().default(false),
    /** Poll interval (seed 003: every 4 minutes). */
    pollMs: z.number().int().min(50).default(4 * 60_000),
    lookupTimeoutMs: z.number().int().min(50).default(3_000),
    /** Port of the private service edges the A records name. */
    psePort: z.number().int().min(1).max(65535).default(443),
    /** Name the PSE certificates are checked against (default: the tenant's edge server name). */
    pseServerName: z.string().optional(),
    /** This device is in the DR test group: `test` mode applies to it. */
    inTestGroup: z.boolean().default(false),
    /** How long the last assertion stays valid after DR starts (IdP unreachable). */
    maxAuthAgeHours: z.number().positive().default(24),
    /** How often the segment list is cached while the cloud is healthy (seed 003: 15 minutes). */
    cacheIntervalMs: z.number().int().min(50).default(15 * 60_000),
  })
  .refine((s) => !!s.publicKeyPem !== s.unsigned, {
    message: 'set exactly one of publicKeyPem (signed DR records) or unsigned: true',
  });
export type DrSettings = z.infer<typeof DrSettings>;
export type DrSettingsInput = z.input<typeof DrSettings>;

/** The configured key, checked to be an Ed25519 public key; undefined in unsigned mode. */
export function drPublicKey(s: DrSettings): KeyObject | undefined {
  if (!s.publicKeyPem) return undefined;
  const key = createPublicKey(s.publicKeyPem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`DR public key must be Ed25519, got ${key.asymmetricKeyType}`);
  return key;
}
