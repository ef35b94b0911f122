/**
 * The ONE typed schema of the agent's local API, shared by the agent (server), the Electron
 * main process and the CLI (clients) and the renderer (types only). Keep it dependency-light:
 * zod and nothing else, no Node or DOM APIs.
 *
 * Transport (see LOCALAPI_* below): HTTP/1.1 over a Unix socket. A request `name` is
 * `POST {LOCALAPI_BASE_PATH}/{name}` with the JSON request body; 200 carries the JSON response,
 * any other status a {@link LocalApiError}. The watch stream is `GET LOCALAPI_WATCH_PATH`,
 * newline-delimited JSON {@link WatchEvent}s, always beginning with one `snapshot`.
 */
import { z } from 'zod';

export const LOCALAPI_VERSION = 1;
export const LOCALAPI_BASE_PATH = '/localapi/v1';
export const LOCALAPI_WATCH_PATH = `${LOCALAPI_BASE_PATH}/watch`;
/** Environment variable that overrides the agent's socket path (demo data dirs, tests). */
export const LOCALAPI_SOCKET_ENV = 'ZCC_LOCALAPI_SOCKET';
/** Socket of the system agent on Linux. */
export const LOCALAPI_DEFAULT_SOCKET = '/run/zcc/localapi.sock';

export const ConnectionStateSchema = z.enum([
  'disconnected',
  'connecting',
  'authenticating',
  'connected',
  'safe-mode',
  'error',
]);
export type ConnectionState = z.infer<typeof ConnectionStateSchema>;

const port = z.number().int().min(0).max(65_535);
export const PortRangeSchema = z
  .object({ from: port, to: port })
  .refine((r) => r.from <= r.to, { message: 'port range must have from <= to' });
export type PortRange = z.infer<typeof PortRangeSchema>;

export const AppSegmentStatusSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  domains: z.array(z.string()),
  tcpPorts: z.array(PortRangeSchema),
  udpPorts: z.array(PortRangeSchema),
});
export type AppSegmentStatus = z.infer<typeof AppSegmentStatusSchema>;

export const SyntheticIpSchema = z.object({
  fqdn: z.string().min(1),
  ip: z.union([z.ipv4(), z.ipv6()]),
});
export type SyntheticIp = z.infer<typeof SyntheticIpSchema>;

const isoTime = z.iso.datetime({ offset: true });
const byteCount = z.number().int().nonnegative();

export const ForwardingStatusSchema = z.object({
  profile: z.enum(['always', 'untrusted-only', 'never']),
  /** `direct`: app traffic does not go through this tenant on this network. */
  action: z.enum(['tunnel', 'direct']),
  reason: z.string(),
});
export type ForwardingStatus = z.infer<typeof ForwardingStatusSchema>;

export const TenantDrStatusSchema = z.object({
  mode: z.enum(['on', 'test', 'off']),
  /** DR applies to this device now: the tunnel goes to a private service edge (Safe Mode). */
  active: z.boolean(),
  domain: z.string(),
  activeSince: isoTime.optional(),
  warnings: z.array(z.string()),
});
export type TenantDrStatus = z.infer<typeof TenantDrStatusSchema>;

export const ConfigErrorSchema = z.object({ file: z.string(), message: z.string(), at: isoTime });

export const ConfigStatusSchema = z.object({
  /** Key paths set by the managed (MDM) source: locked. */
  managedKeys: z.array(z.string()),
  /** Set while a source is broken: the agent runs on its last good configuration. */
  lastError: ConfigErrorSchema.optional(),
});
export type ConfigStatus = z.infer<typeof ConfigStatusSchema>;

export const NetworkStatusSchema = z.object({
  type: z.enum(['trusted', 'untrusted']),
  /** The trusted-network criteria that held (empty when untrusted). */
  matched: z.array(z.string()),
  checkedAt: isoTime,
});
export type NetworkStatus = z.infer<typeof NetworkStatusSchema>;

export const LogLineSchema = z.object({
  time: isoTime,
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
  msg: z.string(),
  component: z.string().optional(),
  tenant: z.string().optional(),
});
export type LogLine = z.infer<typeof LogLineSchema>;

/** A setting as the UI shows it: the effective value and whether the administrator locked it. */
export const SettingSchema = z.object({
  key: z.string(),
  value: z.unknown(),
  managed: z.boolean(),
  description: z.string().optional(),
  /** The allowed values, for a setting that is one of a fixed list. */
  choices: z.array(z.string()).optional(),
});
export type Setting = z.infer<typeof SettingSchema>;

export const TenantStatusSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  connection: ConnectionStateSchema,
  /** Human-readable reason when `connection` is `error` (or the last failure otherwise). */
  error: z.string().optional(),
  user: z.string().optional(),
  /** ISO 8601 time at which the current sign-in expires. */
  authExpiresAt: isoTime.optional(),
  needsReauth: z.boolean(),
  /** The service edge this tenant's Z-Tunnel is connected to (host:port). */
  edge: z.string().optional(),
  /** ISO 8601 time the current tunnel came up. */
  connectedSince: isoTime.optional(),
  bytesIn: byteCount,
  bytesOut: byteCount,
  segments: z.array(AppSegmentStatusSchema),
  syntheticIps: z.array(SyntheticIpSchema),
  /** Turned on by the user or the administrator (`enabled`); the forwarding profile may still keep it off. */
  enabled: z.boolean().optional(),
  /** Whether this device holds a certificate for the tenant; `not-enrolled` needs a sign-in. */
  enrollment: z.enum(['enrolled', 'not-enrolled']).optional(),
  /** The tenant is pinned by the administrator (managed configuration): it cannot be removed here. */
  managed: z.boolean().optional(),
  /** Whether the user may turn this tenant off and on (false when its `enabled` key is managed). */
  canToggle: z.boolean().optional(),
  /** The forwarding profile and what it decides on the current network. */
  forwarding: ForwardingStatusSchema.optional(),
  /** Disaster recovery for this tenant, when a DR domain is configured. */
  dr: TenantDrStatusSchema.optional(),
});
export type TenantStatus = z.infer<typeof TenantStatusSchema>;

export const AgentStatusSchema = z.object({
  version: z.string(),
  /** Hash of the device identity's public key, for support. */
  fingerprintHash: z.string().optional(),
  tenants: z.array(TenantStatusSchema),
  /** Safe Mode: disaster recovery applies to at least one tenant (DR apps only, via a private edge). */
  safeMode: z.boolean(),
  /** The agent's configuration sources: locked keys and the last error, if any. */
  config: ConfigStatusSchema.optional(),
  /** The network the device is on, as the trusted-network criteria judge it. */
  network: NetworkStatusSchema.optional(),
});
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

const TenantRef = z.object({ tenant: z.string().min(1) });
const NoArgs = z.object({}).strict();

/** Every local-API request: its argument and response schemas. */
export const LocalApiRequests = {
  status: { request: NoArgs, response: AgentStatusSchema },
  /** Starts a fresh sign-in; `loginUrl` is for the desktop user's system browser. */
  reauth: {
    request: TenantRef.strict(),
    response: z.object({ tenant: z.string(), started: z.boolean(), loginUrl: z.url().optional() }),
  },
  setTenantEnabled: {
    request: TenantRef.extend({ enabled: z.boolean() }).strict(),
    response: z.object({ tenant: z.string(), enabled: z.boolean() }),
  },
  /**
   * Adds a tenant at runtime: enrolls with the tenant's cloud (MDM token) and opens its
   * Z-Tunnel. `caPem` is the cloud CA to pin for that tenant, never the system trust store.
   */
  addTenant: {
    request: z
      .object({
        tenant: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
        name: z.string().min(1).max(128),
        edge: z.string().min(3).max(300),
        enroll: z.string().min(3).max(300),
        serverName: z.string().min(1).max(253),
        caPem: z.string().includes('BEGIN CERTIFICATE').max(16_384),
        token: z.string().min(16).max(1024),
      })
      .strict(),
    response: z.object({ tenant: z.string(), added: z.boolean() }),
  },
  /** Closes a tenant's Z-Tunnel and forgets its identity on this device. */
  removeTenant: {
    request: TenantRef.strict(),
    response: z.object({ tenant: z.string(), removed: z.boolean() }),
  },
  /** Settings the user may see: effective values (secrets left out), managed ones marked. */
  settings: {
    request: NoArgs,
    response: z.object({ settings: z.array(SettingSchema) }),
  },
  /** Changes a user setting; a managed key is refused (409, code `managed`). */
  setSetting: {
    request: z.object({ key: z.string().min(1).max(200), value: z.unknown() }).strict(),
    response: z.object({ key: z.string(), value: z.unknown() }),
  },
  /** Recent log lines (redacted) and versions, for the diagnostics view. */
  diagnostics: {
    request: z.object({ limit: z.number().int().min(1).max(1000).optional() }).strict(),
    response: z.object({ version: z.string(), node: z.string(), platform: z.string(), fingerprintHash: z.string().optional(), logs: z.array(LogLineSchema) }),
  },
  /** Writes a redacted diagnostics bundle; returns where it went. */
  exportDiagnostics: {
    request: NoArgs,
    response: z.object({ path: z.string(), bytes: byteCount }),
  },
} as const satisfies Record<string, { request: z.ZodType; response: z.ZodType }>;

export type LocalApiRequestName = keyof typeof LocalApiRequests;
export type LocalApiRequest<K extends LocalApiRequestName> = z.infer<(typeof LocalApiRequests)[K]['request']>;
export type LocalApiResponse<K extends LocalApiRequestName> = z.infer<(typeof LocalApiRequests)[K]['response']>;

/** Server side: one handler per request, derived from the same schema as the clients. */
export type LocalApiHandlers = {
  [K in LocalApiRequestName]: (args: LocalApiRequest<K>) => Promise<LocalApiResponse<K>>;
};

export const LOCALAPI_REQUEST_NAMES = Object.keys(LocalApiRequests) as LocalApiRequestName[];

export function isLocalApiRequestName(name: unknown): name is LocalApiRequestName {
  return typeof name === 'string' && Object.hasOwn(LocalApiRequests, name);
}

/** Validates untrusted arguments for `name`; throws a ZodError when they do not match. */
export function parseLocalApiRequest<K extends LocalApiRequestName>(name: K, args: unknown): LocalApiRequest<K> {
  return LocalApiRequests[name].request.parse(args) as LocalApiRequest<K>;
}

/** Validates an untrusted response for `name`; throws a ZodError when it does not match. */
export function parseLocalApiResponse<K extends LocalApiRequestName>(name: K, body: unknown): LocalApiResponse<K> {
  return LocalApiRequests[name].response.parse(body) as LocalApiResponse<K>;
}

export function localApiPath(name: LocalApiRequestName): string {
  return `${LOCALAPI_BASE_PATH}/${name}`;
}

/** Body of every non-200 local-API answer. */
export const LocalApiErrorSchema = z.object({ error: z.string(), code: z.string().optional() });
export type LocalApiError = z.infer<typeof LocalApiErrorSchema>;

/** The watch stream: one snapshot first, then a full status on every change. */
export const WatchEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('snapshot'), status: AgentStatusSchema }),
  z.object({ type: z.literal('changed'), status: AgentStatusSchema }),
]);
export type WatchEvent = z.infer<typeof WatchEventSchema>;
