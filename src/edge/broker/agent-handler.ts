import type { Logger } from '../../common/log.js';
import type { IncomingMicrotunnel, ZTunnelSession } from '../../protocol/session.js';
import { MicrotunnelError } from '../../protocol/microtunnel-open.js';
import { tryNormalizeName } from '../../protocol/domain-match.js';
import type { L4Protocol } from '../../protocol/segments.js';
import type { Dispatcher } from '../dispatcher/dispatcher.js';
import type { CloudSegment, TenantConfig } from '../cloud-config.js';
import { decide, owningSegment } from './policy.js';
import { forwardEarly, stitch } from './stitch.js';
import type { PeerIdentity } from './peer-verify.js';

/** Who the user behind a Z-Tunnel is, and until when that holds (SAML or enrollment token). */
export interface AuthRecord {
  user: string;
  groups: string[];
  expiresAt: number;
}

export interface EdgeCounters {
  microtunnelsOpened: number;
  microtunnelsRefused: number;
  bytesUp: number;
  bytesDown: number;
}

export interface AgentContext {
  log: Logger;
  tenant: TenantConfig;
  identity: Extract<PeerIdentity, { kind: 'client' }>;
  auth: () => AuthRecord | undefined;
  dispatcher: Dispatcher;
  counters: EdgeCounters;
  edgeName: string;
}

/**
 * Serves one agent's Z-Tunnel: sends what the agent needs to know, then for each microtunnel
 * applies auth expiry and access policy, has the dispatcher pick a connector, opens a
 * microtunnel to it under the edge's own tag, and stitches the two.
 */
export function serveAgent(session: ZTunnelSession, ctx: AgentContext): void {
  const { tenant } = ctx;
  const segments = tenant.segments;
  void session.ready().then(() => {
    const auth = ctx.auth();
    session.send({
      type: 'session-info',
      tenant: tenant.id,
      user: ctx.identity.user,
      device: ctx.identity.device,
      edge: ctx.edgeName,
      authExpiresAt: auth ? new Date(auth.expiresAt).toISOString() : undefined,
    });
    session.send({ type: 'segments', revision: 1, segments: segments.map(publicSegment) });
  }, () => undefined);

  session.on('message', (m) => {
    if (m.type === 'reach') void answerReach(session, ctx, m.id, m.host, m.proto ?? 'tcp', m.port);
  });

  session.on('microtunnel', (incoming) => void openThrough(incoming, ctx, segments));
}

async function openThrough(incoming: IncomingMicrotunnel, ctx: AgentContext, segments: CloudSegment[]): Promise<void> {
  const { open } = incoming;
  const { log } = ctx;
  // The microtunnel's fields in every line about it; data, not a child logger per microtunnel.
  const fields = { agentTag: open.tag, target: `${open.host}:${open.port}/${open.proto}` };
  const auth = ctx.auth();
  if (!auth || auth.expiresAt <= Date.now()) {
    ctx.counters.microtunnelsRefused++;
    return incoming.reject('needs-reauth', 'authentication expired');
  }
  const decision = decide(ctx.tenant.policy, segments, { fqdn: open.host, proto: open.proto, port: open.port, user: auth.user, groups: auth.groups }, (id) =>
    segments.find((s) => s.id === id)?.segmentGroup,
  );
  if (!decision.allow) {
    ctx.counters.microtunnelsRefused++;
    log.info({ ...fields, reason: decision.reason, rule: decision.ruleId, detail: decision.detail }, 'microtunnel denied by policy');
    const reason = decision.reason === 'no-segment' ? 'not-an-app' : decision.reason === 'port-not-in-segment' ? 'port-not-in-segment' : 'denied';
    return incoming.reject(reason, decision.detail);
  }
  const segment = decision.segment as CloudSegment;
  const selection = await ctx.dispatcher.select(ctx.tenant.id, segment.connectorGroups, open);
  if (!selection.ok) {
    ctx.counters.microtunnelsRefused++;
    log.info({ ...fields, reason: selection.reason, detail: selection.detail }, 'no connector for microtunnel');
    return incoming.reject(selection.reason, selection.detail);
  }
  const connector = selection.connector;
  let outgoing;
  let counters;
  try {
    outgoing = connector.session.openMicrotunnel({ proto: open.proto, host: open.host, port: open.port });
    connector.active++;
    counters = forwardEarly(incoming.stream, outgoing.stream);
    await outgoing.established;
  } catch (err) {
    if (outgoing) connector.active--;
    ctx.counters.microtunnelsRefused++;
    const reason = err instanceof MicrotunnelError ? err.reason : 'connector-gone';
    log.info({ ...fields, reason, connector: connector.id }, 'connector refused microtunnel');
    return incoming.reject(reason === 'peer-reset' ? 'unreachable' : reason, (err as Error).message);
  }
  const agentStream = incoming.accept();
  ctx.counters.microtunnelsOpened++;
  log.info(
    { ...fields, connector: connector.id, connectorTag: outgoing.tag, rule: decision.ruleId, segment: segment.id, selected: selection.reason },
    'microtunnel stitched',
  );
  const totals = await stitch(agentStream, outgoing.stream, counters, log, fields, () => connector.session.closed);
  connector.active--;
  ctx.counters.bytesUp += totals.up;
  ctx.counters.bytesDown += totals.down;
  log.debug({ ...fields, up: totals.up, down: totals.down }, 'microtunnel closed');
}

/**
 * Whether an app name resolves and is reachable for this user (seed 003: DNS answers depend on
 * app reachability). Without a port, the first port of the most specific matching segment is
 * probed.
 */
async function answerReach(session: ZTunnelSession, ctx: AgentContext, id: number, name: string, proto: L4Protocol, port: number | undefined): Promise<void> {
  const segments = ctx.tenant.segments;
  const host = tryNormalizeName(name);
  if (!host) return session.send({ type: 'reach-result', id, ok: false, reason: 'not-an-app' });
  const owner = owningSegment(segments, host);
  const probePort = port ?? (proto === 'tcp' ? owner?.tcpPorts : owner?.udpPorts)?.[0]?.from;
  const auth = ctx.auth();
  if (!owner || probePort === undefined) return session.send({ type: 'reach-result', id, ok: false, reason: 'not-an-app' });
  const decision = decide(ctx.tenant.policy, segments, { fqdn: host, proto, port: probePort, user: auth?.user ?? '', groups: auth?.groups ?? [] });
  if (!decision.allow) return session.send({ type: 'reach-result', id, ok: false, reason: decision.reason });
  const segment = segments.find((s) => s.id === decision.segment.id) as CloudSegment;
  const r = await ctx.dispatcher.reachable(ctx.tenant.id, segment.connectorGroups, { proto, host, port: probePort });
  session.send({ type: 'reach-result', id, ok: r.ok, reason: r.reason });
}

function publicSegment(s: CloudSegment) {
  return {
    id: s.id,
    name: s.name,
    domains: s.domains,
    tcpPorts: s.tcpPorts,
    udpPorts: s.udpPorts,
    multimatch: s.multimatch,
    drEnabled: s.drEnabled,
  };
}
