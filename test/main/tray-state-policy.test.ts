/** tray-state.ts for the policy-driven states: DR, enrollment, forwarding, toggles, hidden items. */
import { describe, expect, it } from 'vitest';
import type { AgentStatus, TenantStatus } from '../../src/common/localapi-schema.js';
import { tenantStatusLine, trayMenuModel, trayStateFor, trayTooltip, type TrayAction, type TrayMenuItem } from '../../src/main/tray-state.js';
import { openWindowOnLaunch, traySettingsFrom } from '../../src/main/ui-settings.js';

function tenant(id: string, over: Partial<TenantStatus> = {}): TenantStatus {
  return { id, name: id.toUpperCase(), connection: 'connected', needsReauth: false, bytesIn: 0, bytesOut: 0, segments: [], syntheticIps: [], ...over };
}
const agent = (tenants: TenantStatus[], over: Partial<AgentStatus> = {}): AgentStatus => ({ version: '1', tenants, safeMode: false, ...over });
const actions = (items: TrayMenuItem[]): TrayAction[] => items.flatMap((i) => (i.kind === 'action' ? [i.action] : []));
const labels = (items: TrayMenuItem[]): string[] => items.flatMap((i) => (i.kind === 'separator' ? ['—'] : [i.label]));

const drActive = tenant('dr', { dr: { mode: 'on', active: true, domain: 'dr.example', warnings: [] } });
const notEnrolled = tenant('new', { connection: 'disconnected', enrollment: 'not-enrolled' });
const trusted = tenant('acme', { name: 'Acme', user: 'ada@acme.test', forwarding: { profile: 'untrusted-only', action: 'direct', reason: 'trusted network (dns-search-domain)' } });

describe('tray state from the newer status fields', () => {
  it.each([
    ['DR active on a connected tenant → safe mode', agent([tenant('a'), drActive]), 'safe-mode'],
    ['DR configured but not active → connected', agent([tenant('a', { dr: { mode: 'off', active: false, domain: 'dr.example', warnings: [] } })]), 'connected'],
    ['a tenant not enrolled → needs re-auth', agent([tenant('a'), notEnrolled]), 'needs-reauth'],
    ['not enrolled beats DR safe mode on another tenant', agent([drActive, notEnrolled]), 'needs-reauth'],
    ['direct on the trusted network stays connected', agent([trusted]), 'connected'],
  ] as const)('%s', (_name, status, state) => {
    expect(trayStateFor(status)).toBe(state);
  });

  it('describes each tenant in one line', () => {
    expect(tenantStatusLine(drActive)).toBe('DR: Safe mode (disaster recovery)');
    expect(tenantStatusLine(notEnrolled)).toBe('NEW: Not signed in — sign-in required');
    expect(tenantStatusLine(trusted)).toBe('Acme: off (trusted network)');
    expect(tenantStatusLine({ ...trusted, forwarding: { profile: 'never', action: 'direct', reason: 'profile never' } })).toBe('Acme: off (forwarding profile never)');
    expect(tenantStatusLine({ ...trusted, connection: 'error', error: 'edge down' })).toBe('Acme: Error (edge down)');
    expect(tenantStatusLine({ ...trusted, forwarding: { profile: 'untrusted-only', action: 'tunnel', reason: 'untrusted network' } })).toBe('Acme: Connected as ada@acme.test');
  });

  it('says when the configuration is broken', () => {
    const status = agent([tenant('a')], { config: { managedKeys: [], lastError: { file: '/etc/zcc/agent.json', message: 'bad', at: '2030-01-01T00:00:00Z' } } });
    expect(labels(trayMenuModel(status))[0]).toBe('Configuration error: using the last good configuration');
    expect(trayTooltip(status)).toBe('zcc — connected\nA: Connected');
  });
});

describe('tray menu policy', () => {
  it('offers on/off only where the policy allows and the tenant is enrolled', () => {
    const status = agent([
      tenant('on', { name: 'On' }),
      tenant('off', { name: 'Off', connection: 'disconnected' }),
      tenant('locked', { name: 'Locked', canToggle: false }),
      { ...notEnrolled, canToggle: true },
    ]);
    const toggles = trayMenuModel(status).filter((i) => i.kind === 'action' && i.action.type === 'setTenantEnabled');
    expect(toggles).toEqual([
      { kind: 'action', label: 'Turn On off', enabled: true, action: { type: 'setTenantEnabled', tenant: 'on', enabled: false } },
      { kind: 'action', label: 'Turn Off on', enabled: true, action: { type: 'setTenantEnabled', tenant: 'off', enabled: true } },
    ]);
  });

  it('re-authenticates the tenants that need a sign-in, the not-enrolled ones included', () => {
    const reauth = actions(trayMenuModel(agent([tenant('a'), notEnrolled]))).find((a) => a.type === 'reauth');
    expect(reauth).toEqual({ type: 'reauth', tenants: ['new'] });
  });

  it('hides the items ui.hiddenMenuItems names, without stray separators', () => {
    const status = agent([tenant('a', { canToggle: false })]);
    expect(labels(trayMenuModel(status, { hiddenItems: ['quit'] }))).toEqual(['A: Connected', '—', 'Open zcc', 'Re-authenticate', 'Export diagnostics…']);
    expect(labels(trayMenuModel(status, { hiddenItems: ['open', 'reauth', 'exportDiagnostics'] }))).toEqual(['A: Connected', '—', 'Quit']);
    // Toggles are not hideable by that key; unknown names are ignored.
    const toggled = trayMenuModel(agent([tenant('b')]), { hiddenItems: ['setTenantEnabled', 'bogus'] });
    expect(actions(toggled).map((a) => a.type)).toEqual(['open', 'reauth', 'exportDiagnostics', 'setTenantEnabled', 'quit']);
  });

  it('reads the tray settings from the agent settings', () => {
    expect(
      traySettingsFrom([
        { key: 'ui.hiddenMenuItems', value: ['quit', 7], managed: true },
        { key: 'timeouts.authWarningBeforeSeconds', value: 600, managed: false },
        { key: 'logging.level', value: 'info', managed: false },
      ]),
    ).toEqual({ hiddenMenuItems: ['quit'], authWarningBeforeSeconds: 600, hideWindowOnLaunch: false });
    expect(traySettingsFrom([])).toEqual({ hiddenMenuItems: [], hideWindowOnLaunch: false });
    expect(traySettingsFrom([{ key: 'ui.hideWindowOnLaunch', value: true, managed: true }]).hideWindowOnLaunch).toBe(true);
  });

  it('opens the window on launch unless started with the session (--hidden) or hideWindowOnLaunch', () => {
    expect(openWindowOnLaunch(['electron', '.'], { hideWindowOnLaunch: false })).toBe(true);
    expect(openWindowOnLaunch(['zcc-tray', '--hidden'], { hideWindowOnLaunch: false })).toBe(false);
    expect(openWindowOnLaunch(['zcc-tray'], { hideWindowOnLaunch: true })).toBe(false);
  });
});
