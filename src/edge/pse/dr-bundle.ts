import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { TenantPolicy } from '../broker/policy-schema.js';
import { CloudSegment, parseConfig } from '../cloud-config.js';

/**
 * The config a private service edge serves during DR, exported from the cloud while it is
 * healthy (seed 003: "locally cache subset of cloud config"). Public material only: tenant CA
 * certificates but no CA key, no provisioning keys, no enrollment tokens. The PSE's own server
 * key travels next to it in a separate 0600 file.
 */
export const CachedAssertion = z.strictObject({
  device: z.string().min(1),
  user: z.string().min(1),
  groups: z.array(z.string()),
  /** When the assertion expires at the cloud (ms since epoch); DR extends it. */
  expiresAt: z.number(),
});
export type CachedAssertion = z.infer<typeof CachedAssertion>;

export const DrBundleTenant = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  /** DR-designated segments only, their groups narrowed to DR-designated connector groups. */
  segments: z.array(CloudSegment),
  connectorGroups: z.array(z.strictObject({ id: z.string().min(1), drEnabled: z.boolean() })),
  policy: TenantPolicy,
  ca: z.strictObject({ rootPem: z.string(), clientCaPem: z.string(), connectorCaPem: z.string() }),
  /** The last assertion of each enrolled device: DR has no IdP to ask. */
  assertions: z.array(CachedAssertion).default([]),
});
export type DrBundleTenant = z.infer<typeof DrBundleTenant>;

export const DrBundle = z.strictObject({
  format: z.literal('zcc-dr-bundle'),
  version: z.literal(1),
  exportedAt: z.string(),
  /** The cloud's infrastructure CA: agents and connectors pin it, and it issued `pse.certChainPem`. */
  cloudCaPem: z.string(),
  pse: z.strictObject({ name: z.string().min(1), certChainPem: z.string() }),
  tenants: z.array(DrBundleTenant).min(1),
});
export type DrBundle = z.infer<typeof DrBundle>;

export function loadDrBundle(file: string): DrBundle {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return parseConfig(DrBundle, raw, file);
}
