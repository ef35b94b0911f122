import { useEffect, useState } from 'react';
import type { ZccBridge } from '../common/bridge.js';
import type { AgentStatus } from '../common/localapi-schema.js';
import { TenantCard } from './components/TenantCard';
import { errorMessage } from './format';

type View =
  | { kind: 'loading' }
  | { kind: 'ready'; status: AgentStatus }
  | { kind: 'unavailable'; reason: string; last?: AgentStatus };

/** Starts from one snapshot, then follows pushed changes; renders only. */
export function App({ bridge }: { bridge: ZccBridge }) {
  const [view, setView] = useState<View>({ kind: 'loading' });

  useEffect(() => {
    let alive = true;
    const offStatus = bridge.onStatus((status) => setView({ kind: 'ready', status }));
    const offError = bridge.onAgentError((reason) =>
      setView((prev) => ({ kind: 'unavailable', reason, last: prev.kind === 'ready' ? prev.status : undefined })),
    );
    bridge.getStatus().then(
      // A status pushed meanwhile is newer than this answer: keep it.
      (status) => alive && setView((prev) => (prev.kind === 'ready' ? prev : { kind: 'ready', status })),
      (err: unknown) => alive && setView({ kind: 'unavailable', reason: errorMessage(err) }),
    );
    return () => {
      alive = false;
      offStatus();
      offError();
    };
  }, [bridge]);

  const status = view.kind === 'ready' ? view.status : view.kind === 'unavailable' ? view.last : undefined;
  return (
    <main className="app" aria-labelledby="app-title" aria-busy={view.kind === 'loading'}>
      <header className="app-head">
        <h1 id="app-title">zcc</h1>
        {status && <p className="muted">Agent {status.version}</p>}
      </header>
      {view.kind === 'loading' && <p role="status">Contacting the agent…</p>}
      {view.kind === 'unavailable' && (
        <p className="notice error" role="alert">
          {view.reason}
          {view.last && ' The details below may be out of date.'}
        </p>
      )}
      {status?.safeMode && (
        <p className="notice warn" role="status">
          Safe mode: the agent is not intercepting traffic.
        </p>
      )}
      {status && status.tenants.length === 0 && <p>No tenants are enrolled on this device.</p>}
      {status?.tenants.map((t) => <TenantCard key={t.id} tenant={t} bridge={bridge} />)}
      {status?.fingerprintHash && (
        <footer className="muted">
          Device fingerprint <code>{status.fingerprintHash}</code>
        </footer>
      )}
    </main>
  );
}
