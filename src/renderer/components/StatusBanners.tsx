import type { AgentStatus } from '../../common/localapi-schema.js';
import { agentInSafeMode, tenantInSafeMode } from '../../common/status-view.js';
import { formatTime } from '../format';

/** Safe Mode: announced at once (role=alert), on every view. */
export function SafeModeBanner({ status }: { status: AgentStatus }) {
  if (!agentInSafeMode(status)) return null;
  const names = status.tenants.filter(tenantInSafeMode).map((t) => t.name);
  return (
    <div className="notice safe" role="alert">
      <strong>Safe mode</strong>
      {names.length > 0 && ` for ${names.join(', ')}`}: disaster recovery is active. Only the apps designated for it are
      reachable, through a private service edge.
    </div>
  );
}

/** A configuration source is broken: the agent keeps running on its last good configuration. */
export function ConfigErrorBanner({ status }: { status: AgentStatus }) {
  const err = status.config?.lastError;
  if (!err) return null;
  return (
    <div className="notice error" role="alert">
      <strong>Configuration error</strong> — using the last good configuration: <code>{err.file}</code>: {err.message}
      <span className="muted"> (since {formatTime(err.at)})</span>
    </div>
  );
}

/** Which network the device is on, as the trusted-network criteria judge it. */
export function NetworkLine({ status }: { status: AgentStatus }) {
  const net = status.network;
  if (!net) return null;
  return (
    <p className="network muted">
      {net.type === 'trusted' ? 'Trusted network' : 'Untrusted network'}
      {net.matched.length > 0 && ` (${net.matched.join(', ')})`}
    </p>
  );
}
