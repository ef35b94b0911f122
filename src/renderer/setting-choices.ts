/**
 * Which settings the window lets the user change, and how: booleans as a switch, the known
 * enumerations as a list. Everything else is shown read-only (edit it in the configuration
 * file). The agent validates every change against its schema; this is only the UI's side.
 */
import type { Setting } from '../common/localapi-schema.js';

const ENUMS: { key: RegExp; choices: readonly string[] }[] = [
  { key: /^logging\.level$/, choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] },
  { key: /^trustedNetwork\.match$/, choices: ['any', 'all'] },
  { key: /^tenants\.[^.]+\.forwardingProfile$/, choices: ['always', 'untrusted-only', 'never'] },
];

export type SettingEditor =
  | { kind: 'locked' }
  | { kind: 'boolean' }
  | { kind: 'choice'; choices: readonly string[] }
  | { kind: 'read-only' };

export function settingEditor(s: Setting): SettingEditor {
  if (s.managed) return { kind: 'locked' };
  if (typeof s.value === 'boolean') return { kind: 'boolean' };
  // The agent lists the choices of its enumerations; the table serves agents that do not yet.
  const choices = s.choices ?? ENUMS.find((x) => x.key.test(s.key))?.choices;
  if (choices && typeof s.value === 'string' && choices.includes(s.value)) return { kind: 'choice', choices };
  return { kind: 'read-only' };
}
