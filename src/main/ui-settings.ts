/** The agent settings the tray app itself follows, read from a `settings` answer. Pure. */
import type { Setting } from '../common/localapi-schema.js';

export interface TraySettings {
  /** `ui.hiddenMenuItems`: tray menu items the administrator (or user) hid. */
  hiddenMenuItems: string[];
  /** `timeouts.authWarningBeforeSeconds`: when to warn that a sign-in is about to expire. */
  authWarningBeforeSeconds?: number;
}

export const HIDDEN_MENU_ITEMS_KEY = 'ui.hiddenMenuItems';
export const AUTH_WARNING_KEY = 'timeouts.authWarningBeforeSeconds';

export function traySettingsFrom(settings: readonly Setting[]): TraySettings {
  const value = (key: string): unknown => settings.find((s) => s.key === key)?.value;
  const hidden = value(HIDDEN_MENU_ITEMS_KEY);
  const warn = value(AUTH_WARNING_KEY);
  return {
    hiddenMenuItems: Array.isArray(hidden) ? hidden.filter((h): h is string => typeof h === 'string') : [],
    ...(typeof warn === 'number' && Number.isFinite(warn) && warn >= 0 ? { authWarningBeforeSeconds: warn } : {}),
  };
}
