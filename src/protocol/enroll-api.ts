import https from 'node:https';
import { z } from 'zod';
import { pinnedHttpsOptions, parseHostPort, type TlsIdentity } from './tls.js';

/** Enrollment of an app connector with a one-time provisioning key (seed 000). */
export const ConnectorEnrollRequest = z.strictObject({
  provisioningKey: z.string().min(16).max(256),
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  csr: z.string().min(1).max(16_384),
});

/** Enrollment of an agent, authorised by an MDM token or a login ticket from the SAML flow. */
export const AgentEnrollRequest = z
  .strictObject({
    tenant: z.string().min(1).max(64),
    token: z.string().min(16).max(1024).optional(),
    /** A login ticket from `POST /v1/login/token`: the user and groups come from the IdP's assertion. */
    ticket: z.string().regex(/^[A-Za-z0-9_-]{43}$/).optional(),
    device: z.string().min(1).max(128),
    fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
    csr: z.string().min(1).max(16_384),
  })
  .refine((b) => (b.token === undefined) !== (b.ticket === undefined), { message: 'exactly one of token and ticket is required', path: ['token'] });

/**
 * Renewal of an agent certificate before it expires. The caller is authenticated by the
 * certificate it presents in the TLS handshake (the one being renewed); the body carries the
 * CSR of a key generated fresh on the device and the device fingerprint as computed now.
 */
export const RenewRequest = z.strictObject({
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  csr: z.string().min(1).max(16_384),
});
export type RenewRequest = z.infer<typeof RenewRequest>;

export const EnrollResponse = z.object({
  tenant: z.string(),
  /** Leaf followed by the issuing sub-CA, ready to present in a TLS handshake. */
  certChainPem: z.string(),
  identityUri: z.string(),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

export const ENROLL_PATHS = { connector: '/v1/enroll/connector', agent: '/v1/enroll/agent', renew: '/v1/renew' } as const;

export class EnrollError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'EnrollError';
  }
}

/** Where the cloud's enrollment and login APIs are, and how this caller proves who it is. */
export interface CloudApiTarget {
  /** host:port of the enrollment service. */
  address: string;
  serverName: string;
  /** The cloud CA, pinned: no other CA is trusted for this connection. */
  caPem: string;
  /** Presented as the TLS client certificate (renewal and token refresh authenticate with it). */
  clientIdentity?: TlsIdentity | undefined;
}

/**
 * POSTs JSON to the cloud's enrollment or login API over TLS 1.3 with the cloud CA pinned and
 * validates the answer against `schema`. `what` names the call in errors. Bodies carry one-time
 * secrets, so neither they nor the answers are ever logged here.
 */
export function postCloudJson<T extends z.ZodType>(to: CloudApiTarget, path: string, body: unknown, schema: T, what: string): Promise<z.infer<T>> {
  const { host, port } = parseHostPort(to.address, 'enrollment address');
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        ...pinnedHttpsOptions(to.caPem),
        ...(to.clientIdentity ? { key: to.clientIdentity.keyPem, cert: to.clientIdentity.certPem } : {}),
        // A fresh connection per call: a pooled one could carry another identity's certificate.
        agent: false,
        host,
        port,
        servername: to.serverName,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new EnrollError(res.statusCode ?? 0, `${what} refused (${res.statusCode}): ${errorOf(text)}`));
          const parsed = schema.safeParse(safeJson(text));
          if (!parsed.success) return reject(new EnrollError(502, `${what}: malformed answer (${parsed.error.issues[0]?.path.join('.') || 'not JSON'})`));
          resolve(parsed.data);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${what} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** POSTs to the enrollment service (enroll, renew) and validates the certificate it answers. */
export function postEnroll(address: string, path: string, body: unknown, pinnedCaPem: string, servername: string, clientIdentity?: TlsIdentity): Promise<EnrollResponse> {
  return postCloudJson({ address, serverName: servername, caPem: pinnedCaPem, clientIdentity }, path, body, EnrollResponse, 'enrollment');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The service's `error` field when it sent one, else the start of the body. */
function errorOf(text: string): string {
  const e = (safeJson(text) as { error?: unknown } | undefined)?.error;
  return typeof e === 'string' ? e.slice(0, 300) : text.slice(0, 300);
}

/** Paths of the interactive login (SAML at the cloud, RFC 8252 loopback redirect to the agent). */
export const LOGIN_PATHS = {
  prefix: '/v1/login/',
  start: '/v1/login/start',
  acs: '/v1/login/acs/',
  metadata: '/v1/login/metadata/',
  token: '/v1/login/token',
  refresh: '/v1/login/refresh',
} as const;

/** The one-time secrets of the login flow (codes, tickets): 256 random bits, base64url. */
export const LoginSecret = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

/** Exchange of the code from the loopback redirect for a login ticket (RFC 7636 PKCE proves it is the same agent). */
export const LoginTokenRequest = z.strictObject({
  code: LoginSecret,
  codeVerifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/),
  /** The redirect URI the login was started with; must match exactly. */
  redirect: z.string().min(1).max(256),
});

export const LoginTicketResponse = z.object({
  /** Opaque, one-time, short-lived: enrolls (`POST /v1/enroll/agent`) or re-authenticates (`POST /v1/login/refresh`). */
  ticket: LoginSecret,
  tenant: z.string(),
  user: z.string(),
  expiresAt: z.string().datetime(),
});
export type LoginTicketResponse = z.infer<typeof LoginTicketResponse>;

/** Re-authentication of an enrolled device: mutual TLS with its certificate plus a fresh ticket. */
export const LoginRefreshRequest = z.strictObject({
  ticket: LoginSecret,
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
});

export const LoginRefreshResponse = z.object({
  tenant: z.string(),
  user: z.string(),
  authExpiresAt: z.string().datetime(),
});
export type LoginRefreshResponse = z.infer<typeof LoginRefreshResponse>;
