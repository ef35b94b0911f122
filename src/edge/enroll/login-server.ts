import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../common/log.js';
import { LOGIN_PATHS, LoginRefreshRequest, LoginTokenRequest } from '../../protocol/enroll-api.js';
import { verifyPeer, type TenantTrust } from '../broker/peer-verify.js';
import type { TenantConfig } from '../cloud-config.js';
import type { AuthStore } from './auth-store.js';
import { ApiError, readJson, sendJson } from './json-api.js';
import { checkLoopbackRedirect, OneTimeStore, pkceMatches } from './login-grants.js';
import { parseIdpMetadata } from './saml-metadata.js';
import { SamlServiceProvider } from './saml-sp.js';

/** Who logged in at the IdP, as the SAML assertion says. */
export interface LoginGrant {
  tenant: string;
  user: string;
  groups: string[];
}

interface PendingLogin {
  tenant: string;
  redirect: string;
  state: string;
  codeChallenge: string;
  requestId?: string;
}

export interface LoginDeps {
  log: Logger;
  tenants: Map<string, { config: TenantConfig; trust: TenantTrust }>;
  auth: AuthStore;
}

// A login is a human at a browser: 10 minutes. A code crosses one loopback redirect and a
// ticket one API call, so both live barely longer than that takes.
const PENDING_TTL_MS = 10 * 60_000;
const CODE_TTL_MS = 60_000;
const TICKET_TTL_MS = 2 * 60_000;
const MAX_FORM = 256 << 10;

/**
 * The cloud side of the interactive login (RFC 8252 loopback flow in front of a SAML SP): the
 * agent's browser is sent to the tenant's IdP, the assertion comes back to our ACS and is
 * validated here, and the agent gets — through its loopback redirect and a PKCE-bound code
 * exchange — a one-time ticket. The device never sees the password or the assertion.
 */
export class LoginService {
  private readonly sps = new Map<string, SamlServiceProvider>();
  private readonly pending = new OneTimeStore<PendingLogin>(PENDING_TTL_MS);
  private readonly codes = new OneTimeStore<LoginGrant & { redirect: string; codeChallenge: string }>(CODE_TTL_MS);
  private readonly tickets = new OneTimeStore<LoginGrant>(TICKET_TTL_MS);
  private base = '';

  constructor(private readonly deps: LoginDeps) {}

  /**
   * The enrollment service's base URL as browsers reach it (https://host:port), known once it
   * listens: SP entity ids and ACS URLs derive from it.
   */
  setPublicBase(base: string): void {
    this.base = base.replace(/\/$/, '');
  }

  /** Configures a tenant's SP from its IdP's metadata XML (after setPublicBase). */
  addTenant(tenant: string, idpMetadataXml: string, groupsAttribute: string): SamlServiceProvider {
    if (!this.base) throw new Error('LoginService: setPublicBase first');
    const sp = new SamlServiceProvider({
      tenant,
      entityId: this.entityId(tenant),
      acsUrl: this.acsUrl(tenant),
      idp: parseIdpMetadata(idpMetadataXml),
      groupsAttribute,
      log: this.deps.log.child({ component: 'saml-sp' }),
    });
    this.sps.set(tenant, sp);
    return sp;
  }

  entityId(tenant: string): string {
    return `${this.base}${LOGIN_PATHS.metadata}${encodeURIComponent(tenant)}`;
  }

  acsUrl(tenant: string): string {
    return `${this.base}${LOGIN_PATHS.acs}${encodeURIComponent(tenant)}`;
  }

  /** Redeems a login ticket for enrollment; undefined if unknown, used, expired or another tenant's. */
  takeTicket(ticket: string, tenant: string): LoginGrant | undefined {
    const grant = this.tickets.take(ticket);
    return grant?.tenant === tenant ? grant : undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://enroll.invalid');
    const path = url.pathname;
    if (req.method === 'GET' && path === LOGIN_PATHS.start) return this.start(url, res);
    if (req.method === 'GET' && path.startsWith(LOGIN_PATHS.metadata)) return this.metadata(tenantIn(path, LOGIN_PATHS.metadata), res);
    if (req.method === 'POST' && path.startsWith(LOGIN_PATHS.acs)) return this.acs(tenantIn(path, LOGIN_PATHS.acs), req, res);
    if (req.method === 'POST' && path === LOGIN_PATHS.token) return this.token(req, res);
    if (req.method === 'POST' && path === LOGIN_PATHS.refresh) return this.refresh(req, res);
    throw new ApiError(404, `no such login endpoint ${req.method ?? ''} ${path}`);
  }

  private async start(url: URL, res: ServerResponse): Promise<void> {
    const q = (k: string): string => url.searchParams.get(k) ?? '';
    const tenant = q('tenant');
    const sp = this.sps.get(tenant);
    if (!sp) throw new ApiError(404, `tenant ${JSON.stringify(tenant.slice(0, 64))} has no SAML login`);
    const redirect = q('redirect');
    const bad = checkLoopbackRedirect(redirect);
    if (bad) throw new ApiError(400, bad);
    if (!/^[A-Za-z0-9._~-]{16,128}$/.test(q('state'))) throw new ApiError(400, 'state: 16 to 128 URL-safe characters');
    if (!/^[A-Za-z0-9_-]{43}$/.test(q('code_challenge'))) throw new ApiError(400, 'code_challenge: a base64url SHA-256 (PKCE S256) is required');
    if (q('code_challenge_method') !== 'S256') throw new ApiError(400, 'code_challenge_method must be S256');
    const login: PendingLogin = { tenant, redirect, state: q('state'), codeChallenge: q('code_challenge') };
    let relayState: string;
    try {
      relayState = this.pending.issue(login).secret;
    } catch (err) {
      throw new ApiError(503, (err as Error).message);
    }
    const { url: idpUrl, requestId } = await sp.authorizeUrl(relayState);
    login.requestId = requestId;
    this.deps.log.info({ tenant }, 'login started: browser sent to the IdP');
    redirectTo(res, 302, idpUrl);
  }

  private metadata(tenant: string, res: ServerResponse): void {
    const sp = this.sps.get(tenant);
    if (!sp) throw new ApiError(404, 'no SAML login for this tenant');
    res.writeHead(200, { 'content-type': 'application/samlmetadata+xml', 'cache-control': 'no-store' });
    res.end(sp.metadataXml());
  }

  /** Assertion consumer service (HTTP-POST binding): the browser arrives from the IdP. */
  private async acs(tenant: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sp = this.sps.get(tenant);
    if (!sp) throw new ApiError(404, 'no SAML login for this tenant');
    const form = await readForm(req);
    const samlResponse = form.get('SAMLResponse');
    if (!samlResponse) throw new ApiError(400, 'SAMLResponse is missing');
    const verdict = await sp.validate(samlResponse);
    const relayState = form.get('RelayState') ?? '';
    const login = /^[A-Za-z0-9_-]{43}$/.test(relayState) ? this.pending.take(relayState) : undefined;
    if (!verdict.ok) {
      // The refusal is logged by the SP; the agent learns of it at once instead of timing out.
      if (login) return redirectTo(res, 303, withParams(login.redirect, { error: 'access_denied', error_description: `SAML response refused: ${verdict.reason}`, state: login.state }));
      throw new ApiError(403, `SAML response refused: ${verdict.reason}`);
    }
    if (!login) throw new ApiError(400, 'RelayState names no login in progress (unknown, used or expired)');
    if (login.tenant !== tenant || login.requestId !== verdict.inResponseTo) {
      this.deps.log.warn({ tenant, reason: 'other-login' }, 'SAML response refused: it answers another login than its RelayState names');
      return redirectTo(res, 303, withParams(login.redirect, { error: 'access_denied', error_description: 'SAML response answers another login', state: login.state }));
    }
    const { secret: code } = this.codes.issue({ tenant, user: verdict.user, groups: verdict.groups, redirect: login.redirect, codeChallenge: login.codeChallenge });
    this.deps.log.info({ tenant, user: verdict.user }, 'login: assertion accepted, browser sent back to the agent');
    redirectTo(res, 303, withParams(login.redirect, { code, state: login.state }));
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, LoginTokenRequest);
    // Taken before any check: a code that failed once is gone (RFC 6749 §4.1.2).
    const grant = this.codes.take(body.code);
    if (!grant) throw new ApiError(400, 'invalid_grant: code unknown, used or expired');
    if (grant.redirect !== body.redirect) throw new ApiError(400, 'invalid_grant: redirect does not match the one the login started with');
    if (!pkceMatches(body.codeVerifier, grant.codeChallenge)) throw new ApiError(400, 'invalid_grant: code_verifier does not match the code_challenge');
    const { secret: ticket, expiresAt } = this.tickets.issue({ tenant: grant.tenant, user: grant.user, groups: grant.groups });
    this.deps.log.info({ tenant: grant.tenant, user: grant.user }, 'login ticket issued');
    sendJson(res, 200, { ticket, tenant: grant.tenant, user: grant.user, expiresAt: new Date(expiresAt).toISOString() });
  }

  /**
   * Re-authentication of an enrolled device: its certificate (mutual TLS) says which device and
   * user; the ticket proves that user just logged in at the IdP. The auth record is renewed with
   * the groups of the new assertion; Z-Tunnels already up see it at their next microtunnel.
   */
  private async refresh(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const check = verifyPeer(req.socket as TLSSocket, (t) => this.deps.tenants.get(t)?.trust);
    if (!check.ok) throw new ApiError(check.code === 'revoked' ? 403 : 401, `re-authentication needs a valid agent certificate: ${check.reason}`);
    const peer = check.identity;
    if (peer.kind !== 'client') throw new ApiError(403, 'only agents re-authenticate');
    const body = await readJson(req, LoginRefreshRequest);
    const grant = this.tickets.take(body.ticket);
    if (!grant) throw new ApiError(403, 'login ticket unknown, used or expired');
    if (grant.tenant !== peer.tenant) throw new ApiError(403, "login ticket is another tenant's");
    if (grant.user.toLowerCase() !== peer.user.toLowerCase()) throw new ApiError(403, `logged-in user ${grant.user} is not the certificate's user ${peer.user}`);
    if (body.fingerprint !== peer.fingerprint) throw new ApiError(403, 'fingerprint mismatch: this certificate was enrolled on another device');
    const config = this.deps.tenants.get(peer.tenant)!.config;
    const expiresAt = Date.now() + config.authTimeoutSeconds * 1000;
    this.deps.auth.set(peer.tenant, peer.device, { user: peer.user, groups: grant.groups, expiresAt });
    const authExpiresAt = new Date(expiresAt).toISOString();
    this.deps.log.info({ tenant: peer.tenant, user: peer.user, device: peer.device, authExpiresAt }, 'device re-authenticated');
    sendJson(res, 200, { tenant: peer.tenant, user: peer.user, authExpiresAt });
  }
}

/** The tenant id after `prefix` in a path; a malformed escape names no tenant rather than failing. */
function tenantIn(path: string, prefix: string): string {
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch {
    return '';
  }
}

function withParams(base: string, params: Record<string, string>): string {
  const u = new URL(base);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

function redirectTo(res: ServerResponse, status: 302 | 303, location: string): void {
  // no-referrer: the code in a loopback URL must not leak onward in a Referer header.
  res.writeHead(status, { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'content-length': 0 });
  res.end();
}

/** Reads a bounded application/x-www-form-urlencoded body (the SAML HTTP-POST binding). */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) throw new ApiError(415, 'expected an HTML form post');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM) throw new ApiError(413, `form exceeds ${MAX_FORM} bytes`);
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
