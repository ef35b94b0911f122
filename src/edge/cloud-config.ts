import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AppSegment } from '../protocol/segments.js';
import { TenantPolicy } from './broker/policy-schema.js';

/** A segment as configured on the cloud: what agents see plus which connector groups serve it. */
export const CloudSegment = AppSegment.and(
  z.object({ connectorGroups: z.array(z.string().min(1)).min(1), segmentGroup: z.string().optional() }),
);
export type CloudSegment = z.infer<typeof CloudSegment>;

export const ConnectorGroup = z.strictObject({
  id: z.string().min(1).max(64),
  /** Keys a new connector presents once to enroll into this group. */
  provisioningKeys: z.array(z.string().min(16)).default([]),
  /** Designated for disaster recovery (served by a private service edge). */
  drEnabled: z.boolean().default(false),
});

export const EnrollmentToken = z.strictObject({
  token: z.string().min(16),
  user: z.string().min(1),
  groups: z.array(z.string()).default([]),
});

/** A user of the demo IdP; the password is scrypt-hashed when the cloud loads it. */
export const DemoIdpUser = z.strictObject({
  user: z.string().min(1).max(256),
  password: z.string().min(8).max(1024),
  groups: z.array(z.string().min(1).max(256)).default([]),
});

/**
 * Where a tenant's users log in (SAML 2.0). Either the cloud's own demo IdP with the users
 * listed here, or an external IdP given by its metadata XML (inline or as a file). The cloud's
 * SP is configured from metadata in both cases.
 */
export const TenantIdp = z.union([
  z.strictObject({ demoUsers: z.array(DemoIdpUser).min(1), groupsAttribute: z.string().min(1).default('groups') }),
  z.strictObject({ metadataXml: z.string().min(1), groupsAttribute: z.string().min(1).default('groups') }),
  z.strictObject({ metadataFile: z.string().min(1), groupsAttribute: z.string().min(1).default('groups') }),
]);
export type TenantIdp = z.infer<typeof TenantIdp>;

export const TenantConfig = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'tenant id: lower-case letters, digits and dashes'),
  name: z.string().min(1),
  segments: z.array(CloudSegment).default([]),
  connectorGroups: z.array(ConnectorGroup).default([]),
  policy: TenantPolicy.default({ matchMode: 'first-match', rules: [] }),
  /** MDM-provided tokens that authorise an agent enrollment without an interactive login. */
  enrollmentTokens: z.array(EnrollmentToken).default([]),
  /** Authentication lifetime (seed 003: 7 days by default); expiry blocks new microtunnels only. */
  authTimeoutSeconds: z.number().int().min(1).default(7 * 24 * 3600),
  clientCertDays: z.number().int().min(1).default(365),
  /** Interactive login (SAML); without it the tenant enrolls by enrollment token only. */
  idp: TenantIdp.optional(),
});
export type TenantConfig = z.infer<typeof TenantConfig>;

export const CloudConfig = z.strictObject({
  /** Name of this service edge, shown to agents and in logs. */
  name: z.string().min(1).default('edge-1'),
  dataDir: z.string().min(1),
  listen: z.strictObject({
    tunnel: z.string().default('127.0.0.1:0'),
    enroll: z.string().default('127.0.0.1:0'),
    /** The demo IdP (HTTPS); started only if a tenant has `idp.demoUsers`. */
    idp: z.string().default('127.0.0.1:0'),
  }),
  /**
   * Base URLs users' browsers reach the enrollment service and the demo IdP at, when not the
   * listen address (a DNS name, a proxy). SAML entity ids and the ACS URL derive from them.
   */
  publicUrls: z.strictObject({ enroll: z.url().optional(), idp: z.url().optional() }).default({}),
  /** Names and addresses the edge's server certificate is issued for. */
  serverNames: z.array(z.string()).default(['localhost', '127.0.0.1']),
  tenants: z.array(TenantConfig).min(1),
  /** How long a probe result stays valid in the dispatcher's cache. */
  probeCacheSeconds: z.number().min(0).default(30),
  /** Disaster recovery: the DR bundle private service edges serve (docs/disaster-recovery.md). */
  dr: z
    .strictObject({
      /** Where to write `dr-bundle.json` and `pse.key.pem` while the cloud runs; unset: no export. */
      exportDir: z.string().optional(),
      /** Seed 003: the DR subset is cached every 15 minutes. */
      exportIntervalSeconds: z.number().int().min(1).default(900),
      /** The PSEs' server certificate: edge name and the names/addresses they are dialled by. */
      pseName: z.string().min(1).default('pse'),
      pseServerNames: z.array(z.string().min(1)).min(1).default(['localhost', '127.0.0.1']),
    })
    .optional(),
});
export type CloudConfig = z.infer<typeof CloudConfig>;
export type CloudConfigInput = z.input<typeof CloudConfig>;

/** Reads and validates a cloud config file; errors name the file and the key path. */
export function loadCloudConfig(file: string): CloudConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return parseConfig(CloudConfig, raw, file);
}

export function parseConfig<T extends z.ZodType>(schema: T, raw: unknown, file: string): z.infer<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new Error(`${file}: invalid configuration\n  ${issues.join('\n  ')}`);
}
