import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/log.js';
import type { TlsIdentity } from '../../protocol/tls.js';
import { OneTimeStore } from '../enroll/login-grants.js';
import { buildSignedResponse } from './assertion.js';
import { parseRedirectAuthnRequest } from './authn-request.js';
import type { IdpSigningKey } from './idp-keys.js';
import { idpMetadataXml } from './metadata.js';
import { sendAutoPost, sendErrorPage, sendLoginPage } from './pages.js';
import type { DemoUserDirectory } from './users.js';

/** One tenant's demo IdP: its users, its key, and the one SP it serves. */
export interface DemoIdpTenant {
  users: DemoUserDirectory;
  key: IdpSigningKey;
  /** The SP this IdP answers; AuthnRequests from anyone else are refused. */
  sp: { entityId: string; acsUrl: string };
  groupsAttribute: string;
}

interface PendingSignIn {
  tenant: string;
  requestId: string;
  relayState?: string;
  failures: number;
}

const SIGN_IN_TTL_MS = 10 * 60_000;
const MAX_FAILURES = 5;
const MAX_FORM = 16 << 10;

/**
 * A small SAML 2.0 identity provider served by the reference cloud, one per tenant under
 * /idp/<tenant>/: metadata, SSO (HTTP-Redirect binding in, HTTP-POST binding out) and a login
 * form. It stands in for the customer's IdP in demos and tests; the cloud's SP only ever sees
 * its metadata XML, exactly as it would see an external IdP's.
 */
export class DemoIdpServer {
  private readonly server: https.Server;
  private readonly tenants = new Map<string, DemoIdpTenant>();
  private readonly signIns = new OneTimeStore<PendingSignIn>(SIGN_IN_TTL_MS);
  private base = '';

  constructor(
    private readonly log: Logger,
    identity: TlsIdentity,
  ) {
    const tlsOptions = { key: identity.keyPem, cert: identity.certPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;
    this.server = https.createServer(tlsOptions, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        log.error({ err: (err as Error).message }, 'IdP request failed');
        if (!res.headersSent) sendErrorPage(res, 500, 'internal error');
      });
    });
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    this.base = `https://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
    return addr;
  }

  /** Overrides the base URL derived from the listen address (a proxy or a DNS name in front). */
  setPublicBase(base: string): void {
    this.base = base.replace(/\/$/, '');
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  entityId(tenant: string): string {
    return `${this.base}/idp/${encodeURIComponent(tenant)}`;
  }

  addTenant(tenant: string, idp: DemoIdpTenant): void {
    this.tenants.set(tenant, idp);
  }

  /** The metadata XML an SP is configured from. */
  metadata(tenant: string): string {
    const t = this.tenants.get(tenant);
    if (!t) throw new Error(`no demo IdP for tenant ${tenant}`);
    return idpMetadataXml({ entityId: this.entityId(tenant), ssoUrl: `${this.entityId(tenant)}/sso`, certBase64: t.key.certBase64 });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://idp.invalid');
    const m = /^\/idp\/([^/]+)\/(metadata|sso|login)$/.exec(url.pathname);
    let tenant = '';
    try {
      tenant = m ? decodeURIComponent(m[1]!) : '';
    } catch {
      // A malformed escape names no tenant: 404 below.
    }
    const t = this.tenants.get(tenant);
    if (!m || !t) return sendErrorPage(res, 404, 'no such page');
    if (m[2] === 'metadata' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml', 'cache-control': 'no-store' });
      res.end(this.metadata(tenant));
      return;
    }
    if (m[2] === 'sso' && req.method === 'GET') return this.sso(tenant, t, url, res);
    if (m[2] === 'login' && req.method === 'POST') return this.login(tenant, t, req, res);
    return sendErrorPage(res, 405, 'method not allowed');
  }

  /** SSO endpoint: checks the AuthnRequest comes from the registered SP, then asks who you are. */
  private sso(tenant: string, t: DemoIdpTenant, url: URL, res: ServerResponse): void {
    const samlRequest = url.searchParams.get('SAMLRequest');
    if (!samlRequest) return sendErrorPage(res, 400, 'SAMLRequest is missing');
    let request;
    try {
      request = parseRedirectAuthnRequest(samlRequest);
    } catch (err) {
      this.log.warn({ tenant, reason: (err as Error).message }, 'IdP: AuthnRequest refused');
      return sendErrorPage(res, 400, (err as Error).message);
    }
    // Only the registered SP, and only its registered ACS: otherwise this IdP would hand signed
    // assertions to whoever asks (an open redirect for credentials).
    if (request.issuer !== t.sp.entityId || (request.acsUrl !== undefined && request.acsUrl !== t.sp.acsUrl)) {
      this.log.warn({ tenant, reason: 'unknown-sp' }, 'IdP: AuthnRequest refused: not from the registered service provider');
      return sendErrorPage(res, 403, 'this service provider is not registered with this IdP');
    }
    const relayState = url.searchParams.get('RelayState') ?? undefined;
    const { secret } = this.signIns.issue({ tenant, requestId: request.id, relayState, failures: 0 });
    sendLoginPage(res, { action: `/idp/${encodeURIComponent(tenant)}/login`, request: secret, idpName: `Demo IdP — ${tenant}` });
  }

  private async login(tenant: string, t: DemoIdpTenant, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readSmallForm(req);
    if (!form) return sendErrorPage(res, 400, 'expected a small HTML form post');
    const signIn = this.signIns.take(form.get('request') ?? '');
    if (!signIn || signIn.tenant !== tenant) return sendErrorPage(res, 400, 'this sign-in expired or was already used: start again from the application');
    const user = (form.get('user') ?? '').trim().slice(0, 256);
    const found = await t.users.check(user, form.get('password') ?? '');
    if (!found) {
      const failures = signIn.failures + 1;
      this.log.warn({ tenant, user, failures }, 'IdP: wrong user or password');
      if (failures >= MAX_FAILURES) return sendErrorPage(res, 403, 'too many failed attempts: start again from the application');
      const { secret } = this.signIns.issue({ ...signIn, failures });
      return sendLoginPage(res, { status: 401, action: `/idp/${encodeURIComponent(tenant)}/login`, request: secret, idpName: `Demo IdP — ${tenant}`, user, error: 'Wrong user or password.' });
    }
    const response = buildSignedResponse({
      key: t.key,
      issuer: this.entityId(tenant),
      audience: t.sp.entityId,
      acsUrl: t.sp.acsUrl,
      inResponseTo: signIn.requestId,
      nameId: found.user,
      groups: found.groups,
      groupsAttribute: t.groupsAttribute,
    });
    this.log.info({ tenant, user: found.user, groups: found.groups }, 'IdP: user signed in, assertion issued');
    sendAutoPost(res, { acsUrl: t.sp.acsUrl, samlResponse: Buffer.from(response.xml).toString('base64'), relayState: signIn.relayState });
  }
}

async function readSmallForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM) return undefined;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
