/**
 * The ONE schema of every agent setting. Every source (managed file or MDM profile, the user
 * file, defaults) is validated against it, docs/configuration.md is generated from it
 * (`npx tsx scripts/gen-config-docs.ts`), and `zcc config check` uses it. Objects are strict:
 * a misspelt key is an error rather than a silently ignored setting.
 *
 * `.meta({ docType })` names a value's type for the docs where zod's own type (string) says
 * too little; `.describe()` is the text the docs show.
 */
import { createPublicKey } from 'node:crypto';
import net from 'node:net';
import { z } from 'zod';
import { tryNormalizeName } from '../../protocol/domain-match.js';
import { InvalidCidrError, parsePoolCidr } from '../ipam/cidr.js';

const doc = (docType: string) => ({ docType });

const ipAddress = z.string().refine((s) => net.isIP(s) !== 0, { message: 'expected an IP address' }).meta(doc('IP address'));

const dnsName = z
  .string()
  .refine((s) => tryNormalizeName(s) !== null, { message: 'expected a DNS name' })
  .meta(doc('DNS name'));

/** host:port or [ipv6]:port; the host may be a name (edges are usually reached by name). */
function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  return port <= 65_535 ? { host: (m[1] ?? m[2]) as string, port } : null;
}

const hostPort = z
  .string()
  .refine((s) => splitHostPort(s) !== null, { message: 'expected host:port ([ipv6]:port for IPv6)' })
  .meta(doc('host:port'));

const listenAddress = z
  .string()
  .refine((s) => { const hp = splitHostPort(s); return hp !== null && net.isIP(hp.host) !== 0; }, { message: 'expected ip:port ([ipv6]:port for IPv6)' })
  .meta(doc('ip:port'));

/** A resolver: an IP, or ip:port ([ipv6]:port) when it does not listen on 53. */
const resolverAddress = z
  .string()
  .refine((s) => net.isIP(s) !== 0 || ((hp) => hp !== null && net.isIP(hp.host) !== 0)(splitHostPort(s)), { message: 'expected an IP address or ip:port ([ipv6]:port)' })
  .meta(doc('ip or ip:port'));

/** Any IPv4 or IPv6 network, for the trusted-network range (not limited like the pool). */
const networkCidr = z
  .string()
  .refine(
    (s) => {
      const [addr, prefix, extra] = s.split('/');
      if (extra !== undefined || addr === undefined || prefix === undefined || !/^\d{1,3}$/.test(prefix)) return false;
      const family = net.isIP(addr);
      return family !== 0 && Number(prefix) <= (family === 4 ? 32 : 128);
    },
    { message: 'expected a CIDR such as 10.0.0.0/8 or fd00::/8' },
  )
  .meta(doc('CIDR'));

const poolCidr = z.string().superRefine((s, ctx) => {
  try {
    parsePoolCidr(s);
  } catch (e) {
    if (!(e instanceof InvalidCidrError)) throw e;
    ctx.addIssue({ code: 'custom', message: `expected an IPv4 CIDR usable as the synthetic pool: ${e.why}` });
  }
}).meta(doc('IPv4 CIDR'));

/** PEM, or the base64 of the DER SubjectPublicKeyInfo (what fits in an MDM string field). */
export function parsePublicKey(text: string): ReturnType<typeof createPublicKey> {
  if (text.includes('-----BEGIN')) return createPublicKey(text);
  if (!/^[A-Za-z0-9+/\s]+=*\s*$/.test(text)) throw new Error('not base64');
  return createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
}

const publicKey = z
  .string()
  .refine((s) => { try { parsePublicKey(s); return true; } catch { return false; } }, { message: 'expected a public key: PEM or base64 of DER SPKI' })
  .meta(doc('public key (PEM or base64)'));

const seconds = (max: number) => z.number().int().min(0).max(max).meta(doc('seconds'));

export const ForwardingProfile = z
  .enum(['always', 'untrusted-only', 'never'])
  .describe('Whether app traffic goes through ZPA at all times, only on an untrusted network, or never.');
export type ForwardingProfile = z.infer<typeof ForwardingProfile>;

export const TenantCloud = z
  .strictObject({
    edge: hostPort.describe("The service edge's Z-Tunnel address."),
    enroll: hostPort.describe("The tenant's enrollment service address."),
    serverName: z.string().min(1).max(253).describe('Name the edge certificate must carry (TLS SNI and verification).'),
    caPem: z.string().includes('BEGIN CERTIFICATE', { message: 'expected a PEM certificate' }).optional().describe('Cloud CA to pin, inline PEM. Exactly one of caPem and caFile.'),
    caFile: z.string().min(1).optional().describe('Cloud CA to pin, as a path to a PEM file.'),
  })
  // Pinning is the tenant's whole server authentication: neither (no pin) nor both (which wins?) is allowed.
  .refine((c) => (c.caPem === undefined) !== (c.caFile === undefined), { message: 'exactly one of caPem and caFile is required', path: ['caPem'] });

export const AgentTenantConfig = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a tenant id: lower-case letters, digits and dashes').describe('Tenant id, the key of everything per tenant.'),
  name: z.string().min(1).max(128).describe('Display name.'),
  cloud: TenantCloud.describe("How to reach the tenant's cloud and which CA to pin."),
  enrollmentToken: z.string().min(16).max(1024).optional().describe('MDM enrollment token: enrolls without an interactive login.'),
  idp: z.strictObject({ loginUrl: z.url().optional().describe('Where an interactive sign-in starts.') }).optional().describe('Identity provider (SAML) settings.'),
  forwardingProfile: ForwardingProfile.default('always'),
  enabled: z.boolean().default(true).describe('Whether the tenant is turned on.'),
});
export type AgentTenantConfig = z.infer<typeof AgentTenantConfig>;

export const DnsSettings = z.strictObject({
  listen: listenAddress.default('127.0.1.53:53').describe('Address of the agent DNS server (UDP and TCP); the OS resolver is pointed here (port 53: resolv.conf cannot name another).'),
  searchDomains: z.array(dnsName).max(32).default([]).describe('Domains that complete short names (seed: DNS search domains).'),
  domainValidation: z.boolean().default(false).describe('A short name not found within the search domains gets NXDOMAIN instead of continuing through the OS.'),
  poolCidr: poolCidr.default('100.64.0.0/10').describe('Synthetic IP pool: one address per app name.'),
});
export type DnsSettings = z.infer<typeof DnsSettings>;

export const DrSettings = z.strictObject({
  domain: dnsName.describe('DR domain whose TXT record switches disaster-recovery mode (missing record = off).'),
  publicKey: publicKey.describe('Key that verifies the DR TXT record signature.'),
  pollIntervalSeconds: z.number().int().min(30).max(86_400).default(240).meta(doc('seconds')).describe('How often the DR record is polled (seed: every 4 minutes).'),
  resolvers: z.array(resolverAddress).max(8).optional().describe('Resolvers to ask for the DR record; the OS resolvers when absent.'),
  requireSigned: z.boolean().default(true).describe('Refuse unsigned DR records. Activation and deactivation must be alike.'),
  maxAssertionAgeHours: z.number().int().min(1).max(8_760).default(168).meta(doc('hours')).describe('During DR the IdP is unreachable: a SAML assertion stays valid until its start + this age (default: the 7-day auth timeout).'),
  psePort: z.number().int().min(1).max(65_535).default(443).describe('Port of the private service edges named by the DR domain\'s A records.'),
  testGroup: z.boolean().default(false).describe('This device is in the DR test group: mode `test` applies to it while the cloud stays up.'),
});
export type DrSettings = z.infer<typeof DrSettings>;

export const TrustedNetworkCriteria = z.strictObject({
  match: z.enum(['any', 'all']).default('any').describe('Trusted when any (or all) of the configured criteria hold. No criteria: never trusted.'),
  dnsServers: z.array(ipAddress).max(16).optional().describe('Holds when one of the OS DNS servers is in this list.'),
  searchDomains: z.array(dnsName).max(16).optional().describe('Holds when one of the OS search domains is in this list.'),
  hostname: z
    .strictObject({
      name: dnsName.describe('A name only the trusted network resolves.'),
      expectedIp: ipAddress.describe('The address it must resolve to.'),
    })
    .optional()
    .describe('Holds when the name resolves to the expected address.'),
  defaultGateway: ipAddress.optional().describe('Holds when this is a default gateway.'),
  networkRange: networkCidr.optional().describe('Holds when a local address is in this range.'),
});
export type TrustedNetworkCriteria = z.infer<typeof TrustedNetworkCriteria>;

export const TimeoutSettings = z.strictObject({
  tcpHalfClosedIdleSeconds: seconds(86_400).default(360).describe('Idle timeout of a half-closed TCP session (seed: 6 minutes).'),
  tcpOpenIdleSeconds: seconds(86_400 * 7).default(0).describe('Idle timeout of an open TCP session; 0 = never (seed default).'),
  udpIdleSeconds: seconds(86_400).default(60).describe('Idle timeout of a UDP session (seed: 60 seconds).'),
  authWarningBeforeSeconds: seconds(86_400).default(1_800).describe('How long before the sign-in expires the user is warned.'),
});
export type TimeoutSettings = z.infer<typeof TimeoutSettings>;

export const LoggingSettings = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Agent log level.'),
});

export const TRAY_MENU_ITEMS = ['open', 'reauth', 'exportDiagnostics', 'quit'] as const;

export const UiSettings = z.strictObject({
  hideWindowOnLaunch: z.boolean().default(false).describe('Start in the tray without opening the window.'),
  hiddenMenuItems: z.array(z.enum(TRAY_MENU_ITEMS)).default([]).describe('Tray menu items not shown (e.g. quit on managed machines).'),
});

export const LocalApiSettings = z.strictObject({
  operatorGroup: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}\$?$|^\d+$/, 'expected a group name or gid').optional().describe('Members of this group may change the agent through the local API (root always may).'),
});

export const AgentConfig = z.strictObject({
  tenants: z
    .array(AgentTenantConfig)
    .max(16)
    .refine((ts) => new Set(ts.map((t) => t.id)).size === ts.length, { message: 'tenant ids must be unique' })
    .default([])
    .describe('Tenants (several may be active at once, each with its own Z-Tunnel).'),
  dns: DnsSettings.prefault({}).describe('The agent DNS server and the synthetic IP pool.'),
  dr: DrSettings.optional().describe('Disaster recovery; absent = DR polling off.'),
  trustedNetwork: TrustedNetworkCriteria.prefault({}).describe('How the agent recognises the trusted (corporate) network, for the untrusted-only forwarding profile.'),
  timeouts: TimeoutSettings.prefault({}).describe('Idle timeouts of app sessions and the sign-in expiry warning (seed: timeout policy).'),
  logging: LoggingSettings.prefault({}).describe('Agent logging.'),
  ui: UiSettings.prefault({}).describe('Tray app behaviour.'),
  localApi: LocalApiSettings.prefault({}).describe('Who may drive the agent through its local API.'),
});
export type AgentConfig = z.infer<typeof AgentConfig>;
export type AgentConfigInput = z.input<typeof AgentConfig>;
export type LoggingSettings = z.infer<typeof LoggingSettings>;
export type UiSettings = z.infer<typeof UiSettings>;
export type LocalApiSettings = z.infer<typeof LocalApiSettings>;

/** The effective configuration when no source says anything. */
export function defaultAgentConfig(): AgentConfig {
  return AgentConfig.parse({});
}
