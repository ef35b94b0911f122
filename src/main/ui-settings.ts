/** The agent settings the tray app itself follows, read from a `settings` answer. Pure. */
import type { Setting } from '../common/localapi-schema.js';

export interface TraySettings {
  /** `ui.hiddenMenuItems`: tray menu items the administrator (or user) hid. */
  hiddenMenuItems: string[];
  /** `timeouts.authWarningBeforeSeconds`: when to warn that a sign-in is about to expire. */
  authWarningBeforeSeconds?: number;
  /** `ui.hideWindowOnLaunch`: start in the tray only. */
  hideWindowOnLaunch: boolean;
}

export const HIDDEN_MENU_ITEMS_KEY = 'ui.hiddenMenuItems';
export const AUTH_WARNING_KEY = 'timeouts.authWarningBeforeSeconds';
export const HIDE_WINDOW_KEY = 'ui.hideWindowOnLaunch';
/** Passed by the login item / XDG autostart entry: a start with the session opens no window. */
export const HIDDEN_ARG = '--hidden';

/**
 * Whether to open the window when the app starts: not when started with the desktop session
 * (`--hidden`), nor when the administrator or user set `ui.hideWindowOnLaunch`. Pure.
 */
export function openWindowOnLaunch(argv: readonly string[], settings: Pick<TraySettings, 'hideWindowOnLaunch'>): boolean {
  return !argv.includes(HIDDEN_ARG) && !settings.hideWindowOnLaunch;
}

export function traySettingsFrom(settings: readonly Setting[]): TraySettings {
  const value = (key: string): unknown => settings.find((s) => s.key === key)?.value;
  const hidden = value(HIDDEN_MENU_ITEMS_KEY);
  const warn = value(AUTH_WARNING_KEY);
  return {
    hideWindowOnLaunch: value(HIDE_WINDOW_KEY) === true,
    hiddenMenuItems: Array.isArray(hidden) ? hidden.filter((h): h is string => typeof h === 'string') : [],
    ...(typeof warn === 'number' && Number.isFinite(warn) && warn >= 0 ? { authWarningBeforeSeconds: warn } : {}),
  };
}
