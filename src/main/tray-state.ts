/**
 * Pure tray logic: which icon and which menu for an agent status. No electron import, so it is
 * unit-tested as plain functions; tray.ts turns the model into an Electron Menu.
 */
import type { AgentStatus, TenantStatus } from '../common/localapi-schema.js';
import {
  connectionLabel,
  directReason,
  tenantCanToggle,
  tenantForwardsDirect,
  tenantInSafeMode,
  tenantIsOn,
  tenantNeedsSignIn,
  tenantNotEnrolled,
} from '../common/status-view.js';

export const TRAY_ICON_STATES = [
  'connected',
  'connecting',
  'needs-reauth',
  'safe-mode',
  'error',
  'disconnected',
] as const;
export type TrayIconState = (typeof TRAY_ICON_STATES)[number];

/** `undefined` status means the agent is not reachable. */
export type MaybeStatus = AgentStatus | undefined;

/**
 * The aggregate state over all tenants, most urgent first: agent safe mode, any error (or no
 * agent), any tenant needing sign-in (re-auth or not enrolled), any tenant in safe mode (DR
 * active), any tenant on its way up, any tenant connected; otherwise disconnected (also with
 * no tenants).
 */
export function trayStateFor(status: MaybeStatus): TrayIconState {
  if (!status) return 'error';
  if (status.safeMode) return 'safe-mode';
  const tenants = status.tenants;
  const any = (pred: (t: TenantStatus) => boolean): boolean => tenants.some(pred);
  if (any((t) => t.connection === 'error')) return 'error';
  if (any(tenantNeedsSignIn)) return 'needs-reauth';
  if (any(tenantInSafeMode)) return 'safe-mode';
  if (any((t) => t.connection === 'connecting' || t.connection === 'authenticating')) return 'connecting';
  if (any((t) => t.connection === 'connected')) return 'connected';
  return 'disconnected';
}

export interface TrayIconOptions {
  /** macOS template image (monochrome, shape-coded) instead of the coloured icon. */
  template?: boolean;
}

/** File name under resources/icons; Electron picks the `@2x` sibling on HiDPI itself. */
export function trayIconFor(status: MaybeStatus, opts: TrayIconOptions = {}): string {
  return trayIconFile(trayStateFor(status), opts);
}

export function trayIconFile(state: TrayIconState, opts: TrayIconOptions = {}): string {
  return `tray-${state}${opts.template ? 'Template' : ''}.png`;
}

/** What a tenant is doing, in a few words: `Connected as ada@acme.test`, `off (trusted network)`. */
function tenantState(t: TenantStatus): string {
  if (tenantNotEnrolled(t)) return 'Not signed in';
  if (t.connection === 'error') return t.error ? `Error (${t.error})` : 'Error';
  if (t.dr?.active) return 'Safe mode (disaster recovery)';
  if (tenantForwardsDirect(t) && tenantIsOn(t)) return `off (${directReason(t)})`;
  if (t.connection === 'connected' && t.user) return `Connected as ${t.user}`;
  return connectionLabel(t.connection);
}

/** One line describing a tenant, e.g. `Acme: Connected as ada@acme.test`. */
export function tenantStatusLine(t: TenantStatus): string {
  return `${t.name}: ${tenantState(t)}${tenantNeedsSignIn(t) ? ' — sign-in required' : ''}`;
}

/** Menu items an administrator may hide (`ui.hiddenMenuItems`). */
export const HIDEABLE_MENU_ITEMS = ['open', 'reauth', 'exportDiagnostics', 'quit'] as const;
export type HideableMenuItem = (typeof HIDEABLE_MENU_ITEMS)[number];

export interface TrayMenuOptions {
  /** From the agent setting `ui.hiddenMenuItems`; unknown names are ignored. */
  hiddenItems?: readonly string[];
}

export type TrayAction =
  | { type: 'open' }
  | { type: 'reauth'; tenants: string[] }
  | { type: 'setTenantEnabled'; tenant: string; enabled: boolean }
  | { type: 'exportDiagnostics' }
  | { type: 'quit' };

export type TrayMenuItem =
  | { kind: 'status'; label: string }
  | { kind: 'separator' }
  | { kind: 'action'; label: string; enabled: boolean; action: TrayAction };

/**
 * Tenants the "Re-authenticate" item acts on: those that need a sign-in (re-auth or not
 * enrolled), or else the connected ones (a voluntary refresh). Empty means it is disabled.
 */
export function reauthTargets(status: MaybeStatus): string[] {
  if (!status) return [];
  const needing = status.tenants.filter(tenantNeedsSignIn);
  const targets = needing.length > 0 ? needing : status.tenants.filter((t) => t.connection === 'connected');
  return targets.map((t) => t.id);
}

/** "Turn X off/on" for every tenant whose policy lets the user toggle it. */
function toggleItems(status: MaybeStatus): TrayMenuItem[] {
  return (status?.tenants ?? []).filter(tenantCanToggle).map((t) => {
    const on = tenantIsOn(t);
    return {
      kind: 'action',
      label: `Turn ${t.name} ${on ? 'off' : 'on'}`,
      enabled: true,
      action: { type: 'setTenantEnabled', tenant: t.id, enabled: !on },
    };
  });
}

/** Drops separators at either end and next to each other (left by hidden items). */
function tidySeparators(items: TrayMenuItem[]): TrayMenuItem[] {
  const out: TrayMenuItem[] = [];
  for (const item of items) {
    if (item.kind === 'separator' && (out.length === 0 || out.at(-1)?.kind === 'separator')) continue;
    out.push(item);
  }
  while (out.at(-1)?.kind === 'separator') out.pop();
  return out;
}

/**
 * Status lines (safe mode, a broken configuration, one per tenant), then Open,
 * Re-authenticate, Export diagnostics, the tenant toggles, Quit — minus the hidden items.
 */
export function trayMenuModel(status: MaybeStatus, opts: TrayMenuOptions = {}): TrayMenuItem[] {
  const lines: TrayMenuItem[] = [];
  if (!status) {
    lines.push({ kind: 'status', label: 'Agent not reachable' });
  } else {
    if (status.safeMode) lines.push({ kind: 'status', label: 'Safe mode: disaster recovery, DR apps only' });
    if (status.config?.lastError) lines.push({ kind: 'status', label: 'Configuration error: using the last good configuration' });
    if (status.tenants.length === 0) lines.push({ kind: 'status', label: 'No tenants enrolled' });
    for (const t of status.tenants) lines.push({ kind: 'status', label: tenantStatusLine(t) });
  }
  const reauth = reauthTargets(status);
  const hidden = new Set((opts.hiddenItems ?? []).filter((i) => (HIDEABLE_MENU_ITEMS as readonly string[]).includes(i)));
  const items: TrayMenuItem[] = [
    ...lines,
    { kind: 'separator' },
    { kind: 'action', label: 'Open zcc', enabled: true, action: { type: 'open' } },
    { kind: 'action', label: 'Re-authenticate', enabled: reauth.length > 0, action: { type: 'reauth', tenants: reauth } },
    { kind: 'action', label: 'Export diagnostics…', enabled: status !== undefined, action: { type: 'exportDiagnostics' } },
    { kind: 'separator' },
    ...toggleItems(status),
    { kind: 'separator' },
    { kind: 'action', label: 'Quit', enabled: true, action: { type: 'quit' } },
  ];
  return tidySeparators(items.filter((item) => item.kind !== 'action' || !hidden.has(item.action.type)));
}

/** Tooltip: the aggregate state plus one line per tenant. */
export function trayTooltip(status: MaybeStatus): string {
  const head = `zcc — ${TOOLTIP_HEADS[trayStateFor(status)]}`;
  if (!status) return `${head}\nAgent not reachable`;
  return [head, ...status.tenants.map(tenantStatusLine)].join('\n');
}

const TOOLTIP_HEADS: Record<TrayIconState, string> = {
  connected: 'connected',
  connecting: 'connecting',
  'needs-reauth': 'sign-in required',
  'safe-mode': 'safe mode',
  error: 'error',
  disconnected: 'disconnected',
};
