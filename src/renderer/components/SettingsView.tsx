import { useCallback, useEffect, useState } from 'react';
import type { ZccBridge } from '../../common/bridge.js';
import type { Setting } from '../../common/localapi-schema.js';
import { errorMessage } from '../format';
import { SettingRow } from './SettingRow';

type Load = { kind: 'loading' } | { kind: 'ready'; settings: Setting[] } | { kind: 'failed'; text: string };

/**
 * The agent's settings as the user may see them. `version` changes when the agent's
 * configuration does (a managed file changed, a reload failed), which reloads the list.
 */
export function SettingsView({ bridge, version }: { bridge: ZccBridge; version: string }) {
  const [load, setLoad] = useState<Load>({ kind: 'loading' });

  const reload = useCallback(() => {
    bridge.request('settings', {}).then(
      (res) => setLoad({ kind: 'ready', settings: res.settings }),
      (err: unknown) => setLoad({ kind: 'failed', text: `Could not read the settings: ${errorMessage(err)}` }),
    );
  }, [bridge]);

  useEffect(() => reload(), [reload, version]);

  const saved = (s: Setting): void =>
    setLoad((prev) => (prev.kind === 'ready' ? { kind: 'ready', settings: prev.settings.map((x) => (x.key === s.key ? s : x)) } : prev));

  const managed = load.kind === 'ready' ? load.settings.filter((s) => s.managed).length : 0;
  return (
    <div className="settings-view">
      <h2 id="settings-title">Settings</h2>
      {load.kind === 'loading' && <p role="status">Reading the settings…</p>}
      {load.kind === 'failed' && (
        <p className="notice error" role="alert">
          {load.text}
        </p>
      )}
      {load.kind === 'ready' && (
        <>
          <p className="muted">
            {load.settings.length === 0
              ? 'The agent reports no settings.'
              : managed > 0
                ? `${managed} of ${load.settings.length} settings are managed by your administrator and cannot be changed here.`
                : 'You may change the settings with a switch or a list; the others live in the configuration file.'}
          </p>
          <ul className="settings" aria-labelledby="settings-title">
            {load.settings.map((s) => (
              <SettingRow key={s.key} setting={s} bridge={bridge} onSaved={saved} />
            ))}
          </ul>
        </>
      )}
      <button type="button" className="secondary" onClick={reload}>
        Reload settings
      </button>
    </div>
  );
}
