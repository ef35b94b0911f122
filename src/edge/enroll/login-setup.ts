import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { parseHostPort, type TlsIdentity } from '../../protocol/tls.js';
import type { CloudConfig } from '../cloud-config.js';
import { loadOrCreateIdpSigningKey } from '../idp/idp-keys.js';
import { DemoIdpServer } from '../idp/idp-server.js';
import { DemoUserDirectory } from '../idp/users.js';
import type { LoginService } from './login-server.js';

/**
 * Wires the tenants' SAML logins once the enrollment service listens: starts the demo IdP if a
 * tenant uses it (its signing key persisted per tenant under dataDir), and configures each
 * tenant's SP from IdP metadata XML — the demo IdP's own metadata, or the external IdP's.
 */
export async function startSamlLogins(
  cfg: CloudConfig,
  p: { login: LoginService; identity: TlsIdentity; log: Logger; enrollPort: number },
): Promise<DemoIdpServer | undefined> {
  const el = parseHostPort(cfg.listen.enroll, 'listen.enroll');
  p.login.setPublicBase(cfg.publicUrls.enroll ?? httpsBase(el.host, p.enrollPort, cfg.serverNames));
  const withIdp = cfg.tenants.filter((t) => t.idp);
  let idp: DemoIdpServer | undefined;
  if (withIdp.some((t) => t.idp && 'demoUsers' in t.idp)) {
    idp = new DemoIdpServer(p.log.child({ component: 'idp' }), p.identity);
    const il = parseHostPort(cfg.listen.idp, 'listen.idp');
    const addr = await idp.listen(il.host, il.port);
    idp.setPublicBase(cfg.publicUrls.idp ?? httpsBase(il.host, addr.port, cfg.serverNames));
  }
  try {
    for (const t of withIdp) {
      const conf = t.idp!;
      let metadataXml: string;
      if ('demoUsers' in conf) {
        const key = await loadOrCreateIdpSigningKey(join(cfg.dataDir, 'tenants', t.id, 'idp'), idp!.entityId(t.id));
        const users = await DemoUserDirectory.load(conf.demoUsers);
        idp!.addTenant(t.id, { users, key, sp: { entityId: p.login.entityId(t.id), acsUrl: p.login.acsUrl(t.id) }, groupsAttribute: conf.groupsAttribute });
        metadataXml = idp!.metadata(t.id);
      } else {
        metadataXml = 'metadataXml' in conf ? conf.metadataXml : await readFile(conf.metadataFile, 'utf8');
      }
      try {
        p.login.addTenant(t.id, metadataXml, conf.groupsAttribute);
      } catch (err) {
        throw new Error(`tenant ${t.id}: ${(err as Error).message}`);
      }
      p.log.info({ tenant: t.id, sp: p.login.entityId(t.id), idp: 'demoUsers' in conf ? 'demo' : 'external' }, 'SAML login configured');
    }
  } catch (err) {
    await idp?.close();
    throw err;
  }
  return idp;
}

/** The URL a browser uses for a listener: its address, or the first server name for a wildcard. */
function httpsBase(host: string, port: number, serverNames: string[]): string {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const name = wildcard ? (serverNames[0] ?? 'localhost') : host;
  return `https://${isIP(name) === 6 ? `[${name}]` : name}:${port}`;
}
