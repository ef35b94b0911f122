import { useEffect, useRef, useState } from 'react';
import type { ZccBridge } from '../../common/bridge.js';
import type { TenantStatus } from '../../common/localapi-schema.js';
import { tenantNotEnrolled } from '../../common/status-view.js';
import { canReauth, errorMessage, formatTime } from '../format';
import { signInCompleted, signInStart, type SignInStart } from '../sign-in';

type Flow =
  | { kind: 'idle' }
  | { kind: 'starting' }
  | { kind: 'waiting'; loginUrl?: string; before: SignInStart }
  | { kind: 'done'; text: string }
  | { kind: 'failed'; text: string };

/**
 * Re-authenticate (or, for a tenant not enrolled yet, Sign in): asks the agent for a sign-in,
 * opens its login URL in the browser, and waits — cancellable — until the agent's status
 * shows the tenant signed in again.
 */
export function ReauthControl({ tenant, bridge }: { tenant: TenantStatus; bridge: ZccBridge }) {
  const [flow, setFlow] = useState<Flow>({ kind: 'idle' });
  const cancelRef = useRef<HTMLButtonElement>(null);
  const startRef = useRef<HTMLButtonElement>(null);
  const action = tenantNotEnrolled(tenant) ? 'Sign in' : 'Re-authenticate';

  useEffect(() => {
    if (flow.kind === 'waiting' && signInCompleted(flow.before, tenant)) {
      const until = formatTime(tenant.authExpiresAt);
      setFlow({ kind: 'done', text: `Signed in${until ? `; the sign-in is valid until ${until}` : ''}.` });
    }
  }, [flow, tenant]);

  const waiting = flow.kind === 'waiting';
  useEffect(() => {
    if (waiting) cancelRef.current?.focus();
  }, [waiting]);

  const start = (): void => {
    const before = signInStart(tenant);
    setFlow({ kind: 'starting' });
    bridge.request('reauth', { tenant: tenant.id }).then(
      async (res) => {
        if (res.loginUrl) {
          await bridge.openLoginUrl(res.loginUrl);
          setFlow({ kind: 'waiting', loginUrl: res.loginUrl, before });
        } else if (res.started) {
          setFlow({ kind: 'waiting', before });
        } else {
          setFlow({ kind: 'done', text: 'No sign-in needed.' });
        }
      },
      (err: unknown) => setFlow({ kind: 'failed', text: `${action} failed: ${errorMessage(err)}` }),
    ).catch((err: unknown) => setFlow({ kind: 'failed', text: `Could not open the sign-in page: ${errorMessage(err)}` }));
  };

  const cancel = (): void => {
    setFlow({ kind: 'idle' });
    // Focus goes back to where the flow began rather than to the page's start.
    setTimeout(() => startRef.current?.focus(), 0);
  };

  const message =
    flow.kind === 'waiting'
      ? 'Waiting for sign-in… finish it in your browser.'
      : flow.kind === 'done' || flow.kind === 'failed'
        ? flow.text
        : '';
  return (
    <div className="reauth">
      {flow.kind === 'waiting' ? (
        <>
          {flow.loginUrl && (
            <button type="button" className="secondary" onClick={() => void bridge.openLoginUrl(flow.loginUrl!).catch(() => undefined)}>
              Open the sign-in page again<span className="sr-only"> for {tenant.name}</span>
            </button>
          )}
          <button ref={cancelRef} type="button" className="secondary" onClick={cancel}>
            Cancel<span className="sr-only"> sign-in to {tenant.name}</span>
          </button>
        </>
      ) : (
        <button
          ref={startRef}
          type="button"
          onClick={start}
          disabled={!canReauth(tenant) || flow.kind === 'starting'}
          aria-busy={flow.kind === 'starting'}
        >
          {action}
          <span className="sr-only"> {tenant.name}</span>
        </button>
      )}
      <p className={`action-result${flow.kind === 'failed' ? ' error' : ''}${flow.kind === 'waiting' ? ' waiting' : ''}`} role="status">
        {message}
      </p>
    </div>
  );
}
