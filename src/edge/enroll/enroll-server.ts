import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import { AgentEnrollRequest, ConnectorEnrollRequest, ENROLL_PATHS } from '../../protocol/enroll-api.js';
import { identityToUri, type Identity } from '../../protocol/pki.js';
import type { TlsIdentity } from '../../protocol/tls.js';
import type { TenantConfig } from '../cloud-config.js';
import { issueFromCsr, type TenantPki } from '../ca/tenant-pki.js';
import type { AuthStore } from './auth-store.js';
import { ApiError, readJson, sendJson } from './json-api.js';

export interface EnrollDeps {
  log: Logger;
  identity: TlsIdentity;
  tenants: Map<string, { config: TenantConfig; pki: TenantPki }>;
  auth: AuthStore;
}

/**
 * The enrollment service: certifies keys generated on devices and connectors (CSR in, chain
 * out). Who gets certified as what is decided here from the credential presented — the CSR's
 * own claims are ignored.
 */
export class EnrollServer {
  private readonly server: https.Server;

  constructor(private readonly deps: EnrollDeps) {
    this.server = https.createServer({ key: deps.identity.keyPem, cert: deps.identity.certPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const status = err instanceof ApiError ? err.status : 500;
        if (status === 500) deps.log.error({ err: (err as Error).message }, 'enrollment failed');
        else deps.log.warn({ path: req.url, status }, `enrollment refused: ${(err as Error).message}`);
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
    if (req.method !== 'POST') throw new ApiError(405, 'only POST is served');
    if (req.url === ENROLL_PATHS.connector) return this.enrollConnector(req, res);
    if (req.url === ENROLL_PATHS.agent) return this.enrollAgent(req, res);
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
    const grant = tenant.config.enrollmentTokens.find((t) => secretEquals(t.token, body.token));
    if (!grant) throw new ApiError(403, 'enrollment token not valid for this tenant');
    const identity: Identity = { kind: 'client', tenant: body.tenant, user: grant.user, device: body.device, fingerprint: body.fingerprint };
    const cert = await issueFromCsr(tenant.pki.client, body.csr, { identity, validityDays: tenant.config.clientCertDays });
    this.deps.auth.set(body.tenant, body.device, { user: grant.user, groups: grant.groups, expiresAt: Date.now() + tenant.config.authTimeoutSeconds * 1000 });
    this.deps.log.info({ tenant: body.tenant, user: grant.user, device: body.device, serial: cert.serialNumber }, 'agent enrolled');
    sendJson(res, 200, { tenant: body.tenant, certChainPem: cert.chainPem, identityUri: identityToUri(identity) });
  }
}

function secretEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
