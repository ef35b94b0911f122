import { useId, useState } from 'react';
import type { ZccBridge } from '../../common/bridge.js';
import type { Setting } from '../../common/localapi-schema.js';
import { errorMessage, formatSettingValue } from '../format';
import { LockIcon } from './LockIcon';
import { settingEditor } from '../setting-choices';

type Save = { kind: 'idle' } | { kind: 'saving' } | { kind: 'saved' } | { kind: 'failed'; text: string };

/**
 * One setting: a switch or a list when the user may change it, the value with a lock when the
 * administrator manages it, plain text otherwise. A refused change shows the agent's reason.
 */
export function SettingRow({ setting, bridge, onSaved }: { setting: Setting; bridge: ZccBridge; onSaved(s: Setting): void }) {
  const id = useId();
  const [save, setSave] = useState<Save>({ kind: 'idle' });
  const locked = settingEditor(setting).kind === 'locked';
  /** How the value is edited — for a managed one, shown the same way but disabled. */
  const editor = settingEditor({ ...setting, managed: false });
  const disabled = locked || save.kind === 'saving';
  const describedBy = [setting.description ? `${id}-desc` : '', locked ? `${id}-lock` : ''].filter(Boolean).join(' ') || undefined;

  const change = (value: unknown): void => {
    setSave({ kind: 'saving' });
    bridge.request('setSetting', { key: setting.key, value }).then(
      (res) => {
        setSave({ kind: 'saved' });
        onSaved({ ...setting, value: res.value });
      },
      (err: unknown) => setSave({ kind: 'failed', text: `Not changed: ${errorMessage(err)}` }),
    );
  };

  let control;
  if (editor.kind === 'boolean') {
    control = (
      <input
        id={id}
        type="checkbox"
        role="switch"
        checked={setting.value === true}
        disabled={disabled}
        aria-describedby={describedBy}
        onChange={(e) => change(e.currentTarget.checked)}
      />
    );
  } else if (editor.kind === 'choice') {
    control = (
      <select id={id} value={String(setting.value)} disabled={disabled} aria-describedby={describedBy} onChange={(e) => change(e.currentTarget.value)}>
        {editor.choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  } else {
    // Read-only text: an <output> labelled by the key, so it reads as "key, value".
    control = (
      <output id={id} className="setting-value" aria-describedby={describedBy}>
        {formatSettingValue(setting.value)}
      </output>
    );
  }

  return (
    <li className={`setting${locked ? ' locked' : ''}`}>
      <div className="setting-head">
        <label htmlFor={id}>
          <code>{setting.key}</code>
        </label>
        {control}
      </div>
      {setting.description && (
        <p id={`${id}-desc`} className="muted setting-desc">
          {setting.description}
        </p>
      )}
      {locked && (
        <p id={`${id}-lock`} className="locked-note">
          <LockIcon /> Managed by your administrator
        </p>
      )}
      {!locked && editor.kind === 'read-only' && <p className="muted setting-desc">Change it in the agent&apos;s configuration file.</p>}
      <p className={`action-result${save.kind === 'failed' ? ' error' : ''}`} role="status">
        {save.kind === 'failed' ? save.text : save.kind === 'saved' ? 'Saved.' : ''}
      </p>
    </li>
  );
}
