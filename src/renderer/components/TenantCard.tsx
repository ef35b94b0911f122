import { useId, useState } from 'react';
import type { ZccBridge } from '../../common/bridge.js';
import type { TenantStatus } from '../../common/localapi-schema.js';
import { canReauth, connectionLabel, errorMessage, formatBytes, formatTime } from '../format';
import { SegmentTable } from './SegmentTable';

function Detail({ term, value }: { term: string; value: string | undefined }) {
  if (value === undefined || value === '') return null;
  return (
    <div className="detail">
      <dt>{term}</dt>
      <dd>{value}</dd>
    </div>
  );
}

type ReauthState = { kind: 'idle' } | { kind: 'busy' } | { kind: 'done'; text: string } | { kind: 'failed'; text: string };

export function TenantCard({ tenant, bridge }: { tenant: TenantStatus; bridge: ZccBridge }) {
  const headingId = useId();
  const [reauth, setReauth] = useState<ReauthState>({ kind: 'idle' });

  const onReauth = (): void => {
    setReauth({ kind: 'busy' });
    bridge.request('reauth', { tenant: tenant.id }).then(
      (res) =>
        setReauth({
          kind: 'done',
          text: res.loginUrl ? 'Sign-in opened in your browser.' : res.started ? 'Sign-in started.' : 'Sign-in not needed.',
        }),
      (err: unknown) => setReauth({ kind: 'failed', text: `Re-authentication failed: ${errorMessage(err)}` }),
    );
  };

  return (
    <section className="tenant" aria-labelledby={headingId}>
      <header className="tenant-head">
        <h2 id={headingId}>{tenant.name}</h2>
        <span className={`badge state-${tenant.connection}`}>
          <span className="sr-only">Connection: </span>
          {connectionLabel(tenant.connection)}
        </span>
      </header>
      {tenant.connection === 'error' && tenant.error && (
        <p className="notice error" role="alert">
          {tenant.error}
        </p>
      )}
      {tenant.needsReauth && <p className="notice warn">Sign-in required to reach this tenant&apos;s apps.</p>}
      <dl className="details">
        <Detail term="User" value={tenant.user} />
        <Detail term="Service edge" value={tenant.edge} />
        <Detail term="Connected since" value={formatTime(tenant.connectedSince)} />
        <Detail term="Sign-in expires" value={formatTime(tenant.authExpiresAt)} />
        <Detail term="Received" value={formatBytes(tenant.bytesIn)} />
        <Detail term="Sent" value={formatBytes(tenant.bytesOut)} />
      </dl>
      <div className="actions">
        <button
          type="button"
          onClick={onReauth}
          disabled={!canReauth(tenant) || reauth.kind === 'busy'}
          aria-busy={reauth.kind === 'busy'}
        >
          Re-authenticate<span className="sr-only"> {tenant.name}</span>
        </button>
        <p className={`action-result${reauth.kind === 'failed' ? ' error' : ''}`} role="status">
          {reauth.kind === 'done' || reauth.kind === 'failed' ? reauth.text : ''}
        </p>
      </div>
      <SegmentTable tenant={tenant} />
    </section>
  );
}
