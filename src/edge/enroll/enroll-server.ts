import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../common/log.js';
import { AgentEnrollRequest, ConnectorEnrollRequest, ENROLL_PATHS, LOGIN_PATHS, RenewRequest } from '../../protocol/enroll-api.js';
import { identityToUri, type Identity } from '../../protocol/pki.js';
import type { TlsIdentity } from '../../protocol/tls.js';
import type { TenantConfig } from '../cloud-config.js';
import { issueFromCsr, type TenantPki } from '../ca/tenant-pki.js';
import { verifyPeer, type TenantTrust } from '../broker/peer-verify.js';
import type { AuthStore } from './auth-store.js';
import type { LoginService } from './login-server.js';
import { ApiError, readJson, sendJson } from './json-api.js';

export interface EnrollDeps {
  log: Logger;
  identity: TlsIdentity;
  tenants: Map<string, { config: TenantConfig; pki: TenantPki; trust: TenantTrust }>;
  auth: AuthStore;
  /** Interactive login (SAML, loopback redirect); its tickets also authorise enrollment. */
  login?: LoginService;
}

/**
 * The enrollment service: certifies keys generated on devices and connectors (CSR in, chain
 * out). Who gets certified as what is decided here from the credential presented — the CSR's
 * own claims are ignored.
 */
export class EnrollServer {
  private readonly server: https.Server;

  constructor(private readonly deps: EnrollDeps) {
    const tlsOptions = {
      key: deps.identity.keyPem,
      cert: deps.identity.certPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      // A client certificate is asked for but not required: enrollment proper is authorised by a
      // token, provisioning key or login ticket; /v1/login/refresh and /v1/renew take the
      // certificate and check the TLS verdict (chain, validity), tenant CA and revocation itself.
      requestCert: true,
      rejectUnauthorized: false,
      ca: [...deps.tenants.values()].map((t) => t.trust.rootPem),
    } as const;
    this.server = https.createServer(tlsOptions, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const status = err instanceof ApiError ? err.status : 500;
        if (status === 500) deps.log.error({ err: (err as Error).message }, 'enrollment failed');
        // The path without its query: login URLs carry the agent's state and PKCE challenge.
        else deps.log.warn({ path: req.url?.split('?')[0], status }, `enrollment refused: ${(err as Error).message}`);
        if (!res.headersSent) sendJson(res, status, { error: status === 500 ? 'internal error' : (err as Error).message });
      });
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The login endpoints are partly browser-facing (GET start, form-POST ACS): routed first.
    if (this.deps.login && req.url?.startsWith(LOGIN_PATHS.prefix)) return this.deps.login.handle(req, res);
    if (req.method !== 'POST') throw new ApiError(405, 'only POST is served');
    if (req.url === ENROLL_PATHS.connector) return this.enrollConnector(req, res);
    if (req.url === ENROLL_PATHS.agent) return this.enrollAgent(req, res);
    if (req.url === ENROLL_PATHS.renew) return this.renewAgent(req, res);
    throw new ApiError(404, `no such endpoint ${req.url ?? ''}`);
  }

  private async enrollConnector(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, ConnectorEnrollRequest);
    for (const { config, pki } of this.deps.tenants.values()) {
      const group = config.connectorGroups.find((g) => g.provisioningKeys.some((k) => secretEquals(k, body.provisioningKey)));
      if (!group) continue;
      const identity: Identity = { kind: 'connector', tenant: config.id, connector: body.name, group: group.id };
      const cert = await issueFromCsr(pki.connector, body.csr, { identity, validityDays: 365 });
      this.deps.log.info({ tenant: config.id, connector: body.name, group: group.id, serial: cert.serialNumber }, 'connector enrolled');
      return sendJson(res, 200, { tenant: config.id, certChainPem: cert.chainPem, identityUri: identityToUri(identity) });
    }
    throw new ApiError(403, 'unknown provisioning key');
  }

  private async enrollAgent(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, AgentEnrollRequest);
    const tenant = this.deps.tenants.get(body.tenant);
    if (!tenant) throw new ApiError(404, `unknown tenant ${JSON.stringify(body.tenant)}`);
    const grant = body.ticket !== undefined ? this.deps.login?.takeTicket(body.ticket, body.tenant) : tenant.config.enrollmentTokens.find((t) => secretEquals(t.token, body.token ?? ''));
    if (!grant) throw new ApiError(403, body.ticket !== undefined ? 'login ticket unknown, used, expired or for another tenant' : 'enrollment token not valid for this tenant');
    const identity: Identity = { kind: 'client', tenant: body.tenant, user: grant.user, device: body.device, fingerprint: body.fingerprint };
    const cert = await issueFromCsr(tenant.pki.client, body.csr, { identity, validityDays: tenant.config.clientCertDays });
    this.deps.auth.set(body.tenant, body.device, { user: grant.user, groups: grant.groups, expiresAt: Date.now() + tenant.config.authTimeoutSeconds * 1000 });
    this.deps.log.info({ tenant: body.tenant, user: grant.user, device: body.device, serial: cert.serialNumber, via: body.ticket !== undefined ? 'login' : 'token' }, 'agent enrolled');
    sendJson(res, 200, { tenant: body.tenant, certChainPem: cert.chainPem, identityUri: identityToUri(identity) });
  }

  /**
   * Certifies a new key for the agent that proves, by its TLS client certificate, to hold a
   * valid, unrevoked certificate of a tenant: same identity, fresh lifetime. The fingerprint it
   * presents now must be the certified one, so a copied key cannot renew itself elsewhere.
   */
  private async renewAgent(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as TLSSocket;
    const check = verifyPeer(socket, (t) => this.deps.tenants.get(t)?.trust);
    if (!check.ok) throw new ApiError(check.code === 'revoked' ? 403 : 401, `renewal needs a valid agent certificate: ${check.reason}`);
    const peer = check.identity;
    if (peer.kind !== 'client') throw new ApiError(403, 'only agent certificates are renewed here');
    const body = await readJson(req, RenewRequest);
    if (body.fingerprint !== peer.fingerprint) throw new ApiError(403, 'fingerprint mismatch: this certificate was enrolled on another device');
    const tenant = this.deps.tenants.get(peer.tenant)!;
    const identity: Identity = { kind: 'client', tenant: peer.tenant, user: peer.user, device: peer.device, fingerprint: peer.fingerprint };
    const cert = await issueFromCsr(tenant.pki.client, body.csr, { identity, validityDays: tenant.config.clientCertDays });
    // Renewal exists to rotate the key: a CSR for the old key would stretch its life instead.
    if (new X509Certificate(cert.certPem).publicKey.equals(socket.getPeerX509Certificate()!.publicKey)) {
      throw new ApiError(400, 'renewal must certify a newly generated key, not the current one');
    }
    this.deps.log.info({ tenant: peer.tenant, user: peer.user, device: peer.device, oldSerial: peer.serial, serial: cert.serialNumber }, 'agent certificate renewed');
    sendJson(res, 200, { tenant: peer.tenant, certChainPem: cert.chainPem, identityUri: identityToUri(identity) });
  }
}

function secretEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
