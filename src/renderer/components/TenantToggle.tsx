import { useEffect, useId, useState } from 'react';
import type { ZccBridge } from '../../common/bridge.js';
import type { TenantStatus } from '../../common/localapi-schema.js';
import { tenantCanToggle, tenantIsOn, tenantNotEnrolled } from '../../common/status-view.js';
import { errorMessage } from '../format';
import { LockIcon } from './LockIcon';

/**
 * On/off switch of a tenant (its Z-Tunnel). Disabled, with the reason, where the policy does
 * not let the user turn it off (`canToggle: false`); absent until the tenant is enrolled.
 */
export function TenantToggle({ tenant, bridge }: { tenant: TenantStatus; bridge: ZccBridge }) {
  const noteId = useId();
  const on = tenantIsOn(tenant);
  /** The state asked for, shown until the agent's status catches up. */
  const [pending, setPending] = useState<boolean | undefined>(undefined);
  const [error, setError] = useState('');

  useEffect(() => {
    if (pending !== undefined && pending === on) setPending(undefined);
  }, [on, pending]);

  if (tenantNotEnrolled(tenant)) return null;
  const allowed = tenantCanToggle(tenant);
  const checked = pending ?? on;

  const toggle = (): void => {
    const enabled = !checked;
    setPending(enabled);
    setError('');
    bridge.request('setTenantEnabled', { tenant: tenant.id, enabled }).then(
      () => undefined,
      (err: unknown) => {
        setPending(undefined);
        setError(`Could not turn ${tenant.name} ${enabled ? 'on' : 'off'}: ${errorMessage(err)}`);
      },
    );
  };

  return (
    <div className="toggle">
      <button
        type="button"
        role="switch"
        className="switch"
        aria-checked={checked}
        aria-busy={pending !== undefined}
        aria-describedby={allowed ? undefined : noteId}
        disabled={!allowed || pending !== undefined}
        onClick={toggle}
      >
        <span className="switch-track" aria-hidden="true">
          <span className="switch-thumb" />
        </span>
        <span className="switch-label">
          <span className="sr-only">{tenant.name} </span>Tunnel
        </span>
        <span className="switch-state" aria-hidden="true">
          {checked ? 'on' : 'off'}
        </span>
      </button>
      {!allowed && (
        <span id={noteId} className="locked-note">
          <LockIcon /> Managed by your administrator
        </span>
      )}
      {error && (
        <p className="action-result error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
