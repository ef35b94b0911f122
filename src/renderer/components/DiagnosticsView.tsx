import { useCallback, useEffect, useState } from 'react';
import type { ZccBridge } from '../../common/bridge.js';
import type { LocalApiResponse } from '../../common/localapi-schema.js';
import { errorMessage, formatBytes } from '../format';
import { LogTable } from './LogTable';

type Diagnostics = LocalApiResponse<'diagnostics'>;
type Load = { kind: 'loading' } | { kind: 'ready'; diag: Diagnostics } | { kind: 'failed'; text: string };
type Export = { kind: 'idle' } | { kind: 'busy' } | { kind: 'done'; text: string } | { kind: 'failed'; text: string };

/** How many recent log lines the view asks for. */
export const DIAGNOSTICS_LOG_LINES = 200;

/** Versions, the device fingerprint hash, recent (redacted) log lines, and Export. */
export function DiagnosticsView({ bridge }: { bridge: ZccBridge }) {
  const [load, setLoad] = useState<Load>({ kind: 'loading' });
  const [exp, setExp] = useState<Export>({ kind: 'idle' });

  const reload = useCallback(() => {
    bridge.request('diagnostics', { limit: DIAGNOSTICS_LOG_LINES }).then(
      (diag) => setLoad({ kind: 'ready', diag }),
      (err: unknown) => setLoad({ kind: 'failed', text: `Could not read the diagnostics: ${errorMessage(err)}` }),
    );
  }, [bridge]);
  useEffect(() => reload(), [reload]);

  const exportBundle = (): void => {
    setExp({ kind: 'busy' });
    bridge.request('exportDiagnostics', {}).then(
      (res) => setExp({ kind: 'done', text: `Diagnostics saved to ${res.path} (${formatBytes(res.bytes)}).` }),
      (err: unknown) => setExp({ kind: 'failed', text: `Export failed: ${errorMessage(err)}` }),
    );
  };

  return (
    <div className="diagnostics-view">
      <h2>Diagnostics</h2>
      {load.kind === 'loading' && <p role="status">Reading the diagnostics…</p>}
      {load.kind === 'failed' && (
        <p className="notice error" role="alert">
          {load.text}
        </p>
      )}
      {load.kind === 'ready' && (
        <dl className="details">
          <div className="detail">
            <dt>Agent version</dt>
            <dd>{load.diag.version}</dd>
          </div>
          <div className="detail">
            <dt>Node.js</dt>
            <dd>{load.diag.node}</dd>
          </div>
          <div className="detail">
            <dt>Platform</dt>
            <dd>{load.diag.platform}</dd>
          </div>
          <div className="detail wide">
            <dt>Device fingerprint hash</dt>
            <dd>
              <code>{load.diag.fingerprintHash ?? 'not enrolled'}</code>
            </dd>
          </div>
        </dl>
      )}
      <div className="actions">
        <button type="button" onClick={exportBundle} disabled={exp.kind === 'busy'} aria-busy={exp.kind === 'busy'}>
          Export diagnostics
        </button>
        <button type="button" className="secondary" onClick={reload}>
          Reload log
        </button>
        <p className={`action-result${exp.kind === 'failed' ? ' error' : ''}`} role="status">
          {exp.kind === 'done' || exp.kind === 'failed' ? exp.text : ''}
        </p>
      </div>
      {load.kind === 'ready' && <LogTable lines={load.diag.logs} />}
    </div>
  );
}
