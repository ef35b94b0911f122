/**
 * Pure tray logic: which icon and which menu for an agent status. No electron import, so it is
 * unit-tested as plain functions; tray.ts turns the model into an Electron Menu.
 */
import type { AgentStatus, ConnectionState, TenantStatus } from '../common/localapi-schema.js';

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
 * agent), any tenant needing sign-in, any tenant in safe mode, any tenant on its way up, any
 * tenant connected; otherwise disconnected (also with no tenants).
 */
export function trayStateFor(status: MaybeStatus): TrayIconState {
  if (!status) return 'error';
  if (status.safeMode) return 'safe-mode';
  const tenants = status.tenants;
  const any = (pred: (t: TenantStatus) => boolean): boolean => tenants.some(pred);
  if (any((t) => t.connection === 'error')) return 'error';
  if (any((t) => t.needsReauth)) return 'needs-reauth';
  if (any((t) => t.connection === 'safe-mode')) return 'safe-mode';
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

const CONNECTION_LABELS: Record<ConnectionState, string> = {
  disconnected: 'Disconnected',
  connecting: 'Connecting…',
  authenticating: 'Signing in…',
  connected: 'Connected',
  'safe-mode': 'Safe mode',
  error: 'Error',
};

export function connectionLabel(state: ConnectionState): string {
  return CONNECTION_LABELS[state];
}

/** One line describing a tenant, e.g. `Acme: Connected as ada@acme.test`. */
export function tenantStatusLine(t: TenantStatus): string {
  let line = `${t.name}: ${connectionLabel(t.connection)}`;
  if (t.connection === 'error' && t.error) line += ` (${t.error})`;
  else if (t.connection === 'connected' && t.user) line += ` as ${t.user}`;
  if (t.needsReauth) line += ' — sign-in required';
  return line;
}

export type TrayAction =
  | { type: 'open' }
  | { type: 'reauth'; tenants: string[] }
  | { type: 'exportDiagnostics' }
  | { type: 'quit' };

export type TrayMenuItem =
  | { kind: 'status'; label: string }
  | { kind: 'separator' }
  | { kind: 'action'; label: string; enabled: boolean; action: TrayAction };

/**
 * Tenants the "Re-authenticate" item acts on: those that need it, or else the connected ones
 * (a voluntary refresh). Empty means the item is disabled.
 */
export function reauthTargets(status: MaybeStatus): string[] {
  if (!status) return [];
  const needing = status.tenants.filter((t) => t.needsReauth);
  const targets = needing.length > 0 ? needing : status.tenants.filter((t) => t.connection === 'connected');
  return targets.map((t) => t.id);
}

export function trayMenuModel(status: MaybeStatus): TrayMenuItem[] {
  const lines: TrayMenuItem[] = [];
  if (!status) {
    lines.push({ kind: 'status', label: 'Agent not reachable' });
  } else {
    if (status.safeMode) lines.push({ kind: 'status', label: 'Safe mode: traffic is not intercepted' });
    if (status.tenants.length === 0) lines.push({ kind: 'status', label: 'No tenants enrolled' });
    for (const t of status.tenants) lines.push({ kind: 'status', label: tenantStatusLine(t) });
  }
  const reauth = reauthTargets(status);
  return [
    ...lines,
    { kind: 'separator' },
    { kind: 'action', label: 'Open zcc', enabled: true, action: { type: 'open' } },
    {
      kind: 'action',
      label: 'Re-authenticate',
      enabled: reauth.length > 0,
      action: { type: 'reauth', tenants: reauth },
    },
    {
      kind: 'action',
      label: 'Export diagnostics…',
      enabled: status !== undefined,
      action: { type: 'exportDiagnostics' },
    },
    { kind: 'separator' },
    { kind: 'action', label: 'Quit', enabled: true, action: { type: 'quit' } },
  ];
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
