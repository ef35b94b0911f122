import { describe, expect, it } from 'vitest';
import type { AgentStatus, TenantStatus } from '../../src/common/localapi-schema.js';
import {
  TRAY_ICON_STATES,
  reauthTargets,
  trayIconFile,
  trayIconFor,
  trayMenuModel,
  trayStateFor,
  trayTooltip,
  type TrayAction,
  type TrayIconState,
  type TrayMenuItem,
} from '../../src/main/tray-state.js';

function tenant(id: string, over: Partial<TenantStatus> = {}): TenantStatus {
  return {
    id,
    name: id.toUpperCase(),
    connection: 'connected',
    needsReauth: false,
    bytesIn: 0,
    bytesOut: 0,
    segments: [],
    syntheticIps: [],
    ...over,
  };
}

function agent(tenants: TenantStatus[], safeMode = false): AgentStatus {
  return { version: '1.0.0', tenants, safeMode };
}

const t = {
  connected: tenant('a'),
  connecting: tenant('b', { connection: 'connecting' }),
  authenticating: tenant('c', { connection: 'authenticating' }),
  disconnected: tenant('d', { connection: 'disconnected' }),
  error: tenant('e', { connection: 'error', error: 'edge unreachable' }),
  safe: tenant('f', { connection: 'safe-mode' }),
  reauth: tenant('g', { connection: 'disconnected', needsReauth: true }),
};

describe('trayStateFor / trayIconFor', () => {
  const cases: [string, AgentStatus | undefined, TrayIconState][] = [
    ['agent unreachable', undefined, 'error'],
    ['no tenants', agent([]), 'disconnected'],
    ['all connected', agent([t.connected]), 'connected'],
    ['connected + disconnected (one tenant off)', agent([t.connected, t.disconnected]), 'connected'],
    ['only disconnected', agent([t.disconnected]), 'disconnected'],
    ['connecting', agent([t.connected, t.connecting]), 'connecting'],
    ['authenticating counts as connecting', agent([t.authenticating]), 'connecting'],
    ['tenant safe mode', agent([t.connected, t.safe]), 'safe-mode'],
    ['needs reauth beats connecting and safe mode', agent([t.connecting, t.safe, t.reauth]), 'needs-reauth'],
    ['error beats needs reauth', agent([t.reauth, t.error]), 'error'],
    ['agent safe mode beats everything', agent([t.error, t.reauth], true), 'safe-mode'],
  ];
  it.each(cases)('%s → %s', (_name, status, expected) => {
    expect(trayStateFor(status)).toBe(expected);
    expect(trayIconFor(status)).toBe(`tray-${expected}.png`);
    expect(trayIconFor(status, { template: true })).toBe(`tray-${expected}Template.png`);
  });

  it('has an icon file name for every state', () => {
    expect(TRAY_ICON_STATES.map((s) => trayIconFile(s))).toEqual([
      'tray-connected.png',
      'tray-connecting.png',
      'tray-needs-reauth.png',
      'tray-safe-mode.png',
      'tray-error.png',
      'tray-disconnected.png',
    ]);
  });
});

const statusLabels = (items: TrayMenuItem[]): string[] =>
  items.flatMap((i) => (i.kind === 'status' ? [i.label] : []));
const action = (items: TrayMenuItem[], type: TrayAction['type']) =>
  items.find((i): i is Extract<TrayMenuItem, { kind: 'action' }> => i.kind === 'action' && i.action.type === type);

describe('trayMenuModel', () => {
  const cases: [string, AgentStatus | undefined, string[], boolean, string[]][] = [
    // name, status, status lines, reauth enabled, reauth targets
    ['agent unreachable', undefined, ['Agent not reachable'], false, []],
    ['no tenants', agent([]), ['No tenants enrolled'], false, []],
    [
      'connected tenant with user',
      agent([tenant('acme', { name: 'Acme', user: 'ada@acme.test' })]),
      ['Acme: Connected as ada@acme.test'],
      true,
      ['acme'],
    ],
    ['only disconnected', agent([t.disconnected]), ['D: Disconnected'], false, []],
    ['connecting only', agent([t.connecting]), ['B: Connecting…'], false, []],
    ['error line carries the reason', agent([t.error]), ['E: Error (edge unreachable)'], false, []],
    [
      'needing tenants win over connected ones',
      agent([t.connected, t.reauth]),
      ['A: Connected', 'G: Disconnected — sign-in required'],
      true,
      ['g'],
    ],
    [
      'safe mode line first',
      agent([t.connected], true),
      ['Safe mode: disaster recovery, DR apps only', 'A: Connected'],
      true,
      ['a'],
    ],
  ];
  it.each(cases)('%s', (_name, status, lines, reauthEnabled, targets) => {
    const items = trayMenuModel(status);
    expect(statusLabels(items)).toEqual(lines);
    expect(action(items, 'reauth')).toMatchObject({
      label: 'Re-authenticate',
      enabled: reauthEnabled,
      action: { type: 'reauth', tenants: targets },
    });
    expect(reauthTargets(status)).toEqual(targets);
    expect(action(items, 'open')?.enabled).toBe(true);
    expect(action(items, 'quit')?.enabled).toBe(true);
    expect(action(items, 'exportDiagnostics')?.enabled).toBe(status !== undefined);
  });

  it('orders: status lines, separator, Open, Re-authenticate, Export, separator, toggles, separator, Quit', () => {
    const kinds = trayMenuModel(agent([t.connected])).map((i) =>
      i.kind === 'action' ? i.action.type : i.kind,
    );
    expect(kinds).toEqual(['status', 'separator', 'open', 'reauth', 'exportDiagnostics', 'separator', 'setTenantEnabled', 'separator', 'quit']);
    const untoggleable = trayMenuModel(agent([tenant('a', { canToggle: false })])).map((i) =>
      i.kind === 'action' ? i.action.type : i.kind,
    );
    expect(untoggleable).toEqual(['status', 'separator', 'open', 'reauth', 'exportDiagnostics', 'separator', 'quit']);
  });

  it('is plain data (structured-clonable, no functions)', () => {
    const items = trayMenuModel(agent([t.connected, t.reauth], true));
    expect(structuredClone(items)).toEqual(items);
  });
});

describe('trayTooltip', () => {
  it('summarises state and tenants', () => {
    expect(trayTooltip(agent([t.connected, t.reauth]))).toBe(
      'zcc — sign-in required\nA: Connected\nG: Disconnected — sign-in required',
    );
    expect(trayTooltip(undefined)).toBe('zcc — error\nAgent not reachable');
  });
});
