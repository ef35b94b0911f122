import { useId } from 'react';
import type { ZccBridge } from '../../common/bridge.js';
import type { NetworkStatus, TenantStatus } from '../../common/localapi-schema.js';
import { tenantNotEnrolled } from '../../common/status-view.js';
import { forwardingLine, formatBytes, formatTime, formatTimeLeft, tenantBadge } from '../format';
import { ReauthControl } from './ReauthControl';
import { SegmentTable } from './SegmentTable';
import { TenantToggle } from './TenantToggle';

/** A term and its value; `at` (ISO 8601) marks the value up as a <time> for machines. */
function Detail({ term, value, at }: { term: string; value: string | undefined; at?: string }) {
  if (value === undefined || value === '') return null;
  return (
    <div className="detail">
      <dt>{term}</dt>
      <dd>{at ? <time dateTime={at}>{value}</time> : value}</dd>
    </div>
  );
}

function DrLine({ tenant }: { tenant: TenantStatus }) {
  const dr = tenant.dr;
  if (!dr || (dr.mode === 'off' && dr.warnings.length === 0)) return null;
  const since = formatTime(dr.activeSince);
  return (
    <div className="dr-line">
      <p>
        Disaster recovery {dr.mode === 'test' ? '(test) ' : ''}
        {dr.active ? `active${since ? ` since ${since}` : ''}: DR apps only, through a private service edge` : `announced, not active on this device`}
      </p>
      {dr.warnings.length > 0 && (
        <ul className="warnings">
          {dr.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** One tenant: state, sign-in, on/off, details, forwarding and DR, and its app segments. */
export function TenantCard({ tenant, bridge, network, now }: { tenant: TenantStatus; bridge: ZccBridge; network?: NetworkStatus; now: number }) {
  const headingId = useId();
  const badge = tenantBadge(tenant);
  const expires = formatTime(tenant.authExpiresAt);
  const left = formatTimeLeft(tenant.authExpiresAt, now);
  const forwarding = forwardingLine(tenant, network);

  return (
    <section className="tenant" aria-labelledby={headingId}>
      <header className="tenant-head">
        <h2 id={headingId}>{tenant.name}</h2>
        <span className={`badge state-${badge.state}`}>
          <span className="sr-only">Connection: </span>
          {badge.label}
        </span>
        <TenantToggle tenant={tenant} bridge={bridge} />
      </header>
      {tenant.connection === 'error' && tenant.error && (
        <p className="notice error" role="alert">
          {tenant.error}
        </p>
      )}
      {tenantNotEnrolled(tenant) ? (
        <p className="notice warn">This device is not signed in to {tenant.name} yet. Sign in to reach its apps.</p>
      ) : (
        tenant.needsReauth && <p className="notice warn">Sign-in required to reach this tenant&apos;s apps.</p>
      )}
      {forwarding && <p className={`forwarding${tenant.forwarding?.action === 'direct' ? ' direct' : ''}`}>{forwarding}</p>}
      <DrLine tenant={tenant} />
      <dl className="details">
        <Detail term="User" value={tenant.user} />
        <Detail term="Service edge" value={tenant.edge} />
        <Detail term="Connected since" value={formatTime(tenant.connectedSince)} at={tenant.connectedSince} />
        <Detail term="Sign-in expires" value={expires && left ? `${expires} (${left})` : expires} at={tenant.authExpiresAt} />
        <Detail term="Received" value={formatBytes(tenant.bytesIn)} />
        <Detail term="Sent" value={formatBytes(tenant.bytesOut)} />
      </dl>
      <div className="actions">
        <ReauthControl tenant={tenant} bridge={bridge} />
      </div>
      <SegmentTable tenant={tenant} />
    </section>
  );
}
