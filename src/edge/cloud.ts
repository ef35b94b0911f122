import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { parseHostPort, type TlsIdentity } from '../protocol/tls.js';
import { EdgeServer } from './broker/edge-server.js';
import type { TenantTrust } from './broker/peer-verify.js';
import { loadOrCreateInfraCa, loadOrCreateMasterKey, loadOrCreateTenantPki } from './ca/ca-store.js';
import { openRevocationList, type RevocationList } from './ca/revocation.js';
import { issueServerCertificate, type TenantPki } from './ca/tenant-pki.js';
import type { CloudConfig, TenantConfig } from './cloud-config.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { AuthStore } from './enroll/auth-store.js';
import { EnrollServer } from './enroll/enroll-server.js';
import { SnapshotAuthStore } from './pse/auth-snapshot.js';
import { exportDrBundle, exportDrPeriodically, type DrExport, type PseCertRequest } from './pse/dr-export.js';
import { LoginService } from './enroll/login-server.js';
import { startSamlLogins } from './enroll/login-setup.js';
import type { DemoIdpServer } from './idp/idp-server.js';

export interface RunningCloud {
  tunnel: string;
  enroll: string;
  /** The infrastructure CA agents and connectors pin. */
  caPem: string;
  caFile: string;
  edge: EdgeServer;
  dispatcher: Dispatcher;
  auth: AuthStore;
  /** Interactive login: SAML SPs, codes and tickets. */
  login: LoginService;
  /** The demo IdP, if a tenant uses it. */
  idp?: DemoIdpServer;
  tenants: Map<string, { config: TenantConfig; pki: TenantPki; trust: TenantTrust }>;
  /** Revokes one of a tenant's certificates (any hex spelling of the serial): refused from its next Z-Tunnel on. */
  revoke(tenant: string, serial: string): Promise<void>;
  /** The DR bundle for private service edges: DR subset, CA certificates, last assertions, a PSE certificate. */
  exportDr(pse?: PseCertRequest): Promise<DrExport>;
  close(): Promise<void>;
}

/**
 * Starts the reference cloud from its configuration: CAs (created on first start, keys sealed
 * under a master key), the enrollment service and the service edge with its dispatcher.
 */
export async function startCloud(cfg: CloudConfig, log: Logger, opts: { keepaliveMs?: number } = {}): Promise<RunningCloud> {
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  const masterKey = await loadOrCreateMasterKey(join(cfg.dataDir, 'master.key'));
  const infra = await loadOrCreateInfraCa(join(cfg.dataDir, 'infra-ca'), masterKey);
  const caFile = join(cfg.dataDir, 'cloud-ca.pem');
  await writeFile(caFile, infra.certPem, { mode: 0o644 });
  const server = await issueServerCertificate(infra, {
    name: cfg.name,
    dnsNames: cfg.serverNames.filter((n) => !isIP(n)),
    ipAddresses: cfg.serverNames.filter((n) => isIP(n)),
  });
  const identity: TlsIdentity = { keyPem: server.keyPem, certPem: server.chainPem };

  const tenants = new Map<string, { config: TenantConfig; pki: TenantPki; trust: TenantTrust }>();
  const revocationLists = new Map<string, RevocationList>();
  for (const config of cfg.tenants) {
    const dir = join(cfg.dataDir, 'tenants', config.id);
    const pki = await loadOrCreateTenantPki(join(dir, 'ca'), config.id, masterKey);
    const revocations = await openRevocationList(join(dir, 'revoked.json'), config.id);
    revocationLists.set(config.id, revocations);
    const trust: TenantTrust = {
      tenant: config.id,
      rootPem: pki.root.certPem,
      clientCaPem: pki.client.certPem,
      connectorCaPem: pki.connector.certPem,
      isRevoked: (serial) => revocations.isRevoked(serial),
    };
    tenants.set(config.id, { config, pki, trust });
  }

  // Lists its records for the DR export (the PSEs cannot ask the IdP during DR).
  const auth = new SnapshotAuthStore();
  const dispatcher = new Dispatcher(log.child({ component: 'dispatcher' }), cfg.probeCacheSeconds * 1000);
  const edge = new EdgeServer({
    name: cfg.name,
    log: log.child({ component: 'edge' }),
    identity,
    tenants,
    dispatcher,
    auth: (t, d) => auth.get(t, d),
    keepaliveMs: opts.keepaliveMs,
  });
  const login = new LoginService({ log: log.child({ component: 'login' }), tenants, auth });
  const enroll = new EnrollServer({ log: log.child({ component: 'enroll' }), identity, tenants, auth, login });
  const tl = parseHostPort(cfg.listen.tunnel, 'listen.tunnel');
  const el = parseHostPort(cfg.listen.enroll, 'listen.enroll');
  const ta = await edge.listen(tl.host, tl.port);
  const ea = await enroll.listen(el.host, el.port);
  let idp: DemoIdpServer | undefined;
  try {
    idp = await startSamlLogins(cfg, { login, identity, log, enrollPort: ea.port });
  } catch (err) {
    await Promise.all([edge.close(), enroll.close()]);
    throw err;
  }
  log.info({ tunnel: `${tl.host}:${ta.port}`, enroll: `${el.host}:${ea.port}`, tenants: [...tenants.keys()] }, 'cloud up');
  const exportDr = (pse?: PseCertRequest): Promise<DrExport> =>
    exportDrBundle({ infra, tenants, assertions: (t) => auth.assertions(t) }, pse ?? { name: cfg.dr?.pseName ?? 'pse', serverNames: cfg.dr?.pseServerNames });
  const stopDrExport = cfg.dr?.exportDir ? exportDrPeriodically(exportDr, cfg.dr.exportDir, cfg.dr.exportIntervalSeconds * 1000, log.child({ component: 'dr-export' })) : undefined;
  return {
    tunnel: `${tl.host}:${ta.port}`,
    enroll: `${el.host}:${ea.port}`,
    caPem: infra.certPem,
    caFile,
    edge,
    dispatcher,
    auth,
    login,
    idp,
    tenants,
    async revoke(tenant, serial) {
      const list = revocationLists.get(tenant);
      if (!list) throw new Error(`unknown tenant ${JSON.stringify(tenant)}`);
      await list.revoke(serial);
      log.info({ tenant, serial }, 'certificate revoked');
    },
    exportDr,
    async close() {
      stopDrExport?.();
      await Promise.all([edge.close(), enroll.close(), idp?.close()]);
    },
  };
}
