import { readFileSync } from 'node:fs';
import type { Logger } from '../../common/log.js';
import { extendedAuthExpiry, type DrLookup } from '../../protocol/dr-record.js';
import { parseHostPort } from '../../protocol/tls.js';
import type { AuthRecord } from '../broker/agent-handler.js';
import { EdgeServer } from '../broker/edge-server.js';
import type { TenantTrust } from '../broker/peer-verify.js';
import { TenantConfig } from '../cloud-config.js';
import { Dispatcher } from '../dispatcher/dispatcher.js';
import { loadDrBundle, type CachedAssertion, type DrBundle } from './dr-bundle.js';
import type { PseConfig } from './pse-config.js';
import { PseDrMode } from './pse-dr-mode.js';

export interface RunningPse {
  /** host:port the PSE listens on (what the DR domain's A records and connector configs name). */
  tunnel: string;
  edge: EdgeServer;
  dispatcher: Dispatcher;
  mode: PseDrMode;
  bundle: DrBundle;
  close(): Promise<void>;
}

export interface PseOverrides {
  /** Use this bundle and key instead of reading `bundleFile` and `keyFile`. */
  bundle?: DrBundle;
  keyPem?: string;
  lookup?: (domain: string) => Promise<DrLookup>;
  keepaliveMs?: number;
}

/**
 * A private service edge: the broker a customer runs in its own data centre, which during DR
 * serves the cached DR subset of the cloud config to agents and DR-designated connectors. It
 * reuses the cloud's EdgeServer with two DR rules: client certificates are checked against the
 * cached tenant CAs only (no revocation list: seed 003, certificates must be purged via MDM),
 * and a device's last assertion is extended instead of asking the unreachable IdP. It enrolls
 * nobody and forwards no logs.
 */
export async function startPse(cfg: PseConfig, log: Logger, over: PseOverrides = {}): Promise<RunningPse> {
  const bundle = over.bundle ?? loadDrBundle(cfg.bundleFile);
  const keyPem = over.keyPem ?? readFileSync(cfg.keyFile, 'utf8');
  const mode = new PseDrMode({
    domain: cfg.dr.domain,
    resolvers: cfg.dr.resolvers,
    publicKeyPem: cfg.dr.publicKeyFile ? readFileSync(cfg.dr.publicKeyFile, 'utf8') : undefined,
    pollMs: cfg.dr.pollMs,
    lookupTimeoutMs: cfg.dr.lookupTimeoutMs,
    log: log.child({ component: 'dr' }),
    lookup: over.lookup,
  });

  const tenants = new Map<string, { config: TenantConfig; trust: TenantTrust }>();
  const assertions = new Map<string, CachedAssertion>();
  for (const t of bundle.tenants) {
    const config = TenantConfig.parse({
      id: t.id,
      name: t.name,
      segments: t.segments,
      connectorGroups: t.connectorGroups.map((g) => ({ id: g.id, drEnabled: g.drEnabled })),
      policy: t.policy,
    });
    // Static issuer verification only: the revocation list lives in the unreachable cloud.
    tenants.set(t.id, { config, trust: { tenant: t.id, rootPem: t.ca.rootPem, clientCaPem: t.ca.clientCaPem, connectorCaPem: t.ca.connectorCaPem, isRevoked: () => false } });
    for (const a of t.assertions) assertions.set(`${t.id}/${a.device}`, a);
  }

  const maxAgeMs = cfg.maxAuthAgeHours * 3_600_000;
  const unknown = new Set<string>();
  const auth = (tenant: string, device: string): AuthRecord | undefined => {
    if (!mode.serving) {
      mode.pollSoon();
      return undefined;
    }
    const a = assertions.get(`${tenant}/${device}`);
    if (!a) {
      // Without the cached assertion we know neither user nor groups, and a policy cannot be
      // applied to an unknown user without letting it slip past deny rules: refused.
      if (!unknown.has(`${tenant}/${device}`)) log.warn({ tenant, device }, 'no cached assertion for this device (enrolled after the last DR export?): refused');
      unknown.add(`${tenant}/${device}`);
      return undefined;
    }
    return { user: a.user, groups: a.groups, expiresAt: extendedAuthExpiry(a.expiresAt, mode.since ?? Date.now(), maxAgeMs) };
  };

  const dispatcher = new Dispatcher(log.child({ component: 'dispatcher' }), cfg.probeCacheSeconds * 1000);
  const edge = new EdgeServer({
    name: cfg.name,
    log: log.child({ component: 'edge' }),
    identity: { keyPem, certPem: bundle.pse.certChainPem },
    tenants,
    dispatcher,
    auth,
    keepaliveMs: over.keepaliveMs,
  });
  const { host, port } = parseHostPort(cfg.listen, 'listen');
  const bound = await edge.listen(host, port);
  let restarting = Promise.resolve();
  mode.on('change', (now, previous) => {
    if (now !== 'off') return;
    // Leaving DR disconnects sessions (seed 003: switching runtime modes reboots): agents still
    // here must go back to the cloud. Connectors reconnect by themselves.
    log.info({ previous }, 'DR over: dropping every Z-Tunnel');
    restarting = restarting
      .then(async () => {
        await edge.close();
        await edge.listen(host, bound.port);
      })
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'cannot listen again after leaving DR'));
  });
  mode.start();
  const tunnel = `${host}:${bound.port}`;
  log.info({ tunnel, tenants: [...tenants.keys()], exportedAt: bundle.exportedAt, segments: bundle.tenants.map((t) => t.segments.length) }, 'private service edge up');
  return {
    tunnel,
    edge,
    dispatcher,
    mode,
    bundle,
    async close() {
      mode.stop();
      await restarting;
      await edge.close();
    },
  };
}
