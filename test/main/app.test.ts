/**
 * src/main/main.ts end to end with a fake `electron` and a fake agent on a real Unix socket:
 * single-instance lock, tray icon/menu from the watch stream, IPC validation, tray actions.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IPC_CHANNELS } from '../../src/common/bridge.js';
import { LOCALAPI_SOCKET_ENV } from '../../src/common/localapi-schema.js';
import { FIXTURE_STATUS } from '../ui/fixture-status.js';
import { startFakeAgent, type FakeAgent } from './fake-agent.js';

vi.mock('electron', () => import('./fake-electron.js'));

type Fake = typeof import('./fake-electron.js');
type Handler = (event: unknown, ...args: unknown[]) => unknown;

/** Imports main.ts afresh and returns the very fake electron instance it got. */
async function boot(gotLock: boolean): Promise<Fake> {
  vi.resetModules();
  const fake = (await import('electron')) as unknown as Fake;
  fake.resetFakeElectron();
  fake.app.gotLock = gotLock;
  await import('../../src/main/main.js');
  await fake.app.whenReady();
  return fake;
}

const TRUSTED = { senderFrame: { url: 'file:///opt/zcc/out/renderer/index.html' } };
const UNTRUSTED = { senderFrame: { url: 'https://evil.example/' } };

function handler(fake: Fake, channel: string): Handler {
  const h = fake.ipcMain.handlers.get(channel);
  if (!h) throw new Error(`no handler for ${channel}`);
  return h as Handler;
}

function clickMenu(fake: Fake, label: string): void {
  const item = fake.Tray.instances.at(-1)?.menu?.template.find((i) => i.label === label);
  if (!item || typeof item.click !== 'function') throw new Error(`no menu item ${label}`);
  (item.click as () => void)();
}

let agent: FakeAgent;
beforeEach(async () => {
  agent = await startFakeAgent(FIXTURE_STATUS);
  process.env[LOCALAPI_SOCKET_ENV] = agent.socketPath;
});
afterEach(async () => {
  delete process.env[LOCALAPI_SOCKET_ENV];
  await agent.close();
});

describe('main.ts', () => {
  it('quits at once when another instance holds the lock', async () => {
    const fake = await boot(false);
    expect(fake.app.quit).toHaveBeenCalledOnce();
    expect(fake.app.enableSandbox).not.toHaveBeenCalled();
    expect(fake.Tray.instances).toHaveLength(0);
  });

  it('runs the tray from the agent and serves validated IPC', async () => {
    const fake = await boot(true);
    expect(fake.app.enableSandbox).toHaveBeenCalledOnce();
    const tray = fake.Tray.instances[0];
    if (!tray) throw new Error('no tray');
    // Globex needs sign-in in the fixture.
    await vi.waitFor(() => expect(tray.image.path).toBe('/opt/zcc/resources/icons/tray-needs-reauth.png'));
    expect(tray.tooltip).toContain('Globex: Disconnected — sign-in required');

    expect(await handler(fake, IPC_CHANNELS.getStatus)(TRUSTED)).toEqual(FIXTURE_STATUS);
    expect(() => handler(fake, IPC_CHANNELS.getStatus)(UNTRUSTED)).toThrow(/untrusted/);
    expect(() => handler(fake, IPC_CHANNELS.getStatus)({ senderFrame: null })).toThrow(/untrusted/);
    const request = handler(fake, IPC_CHANNELS.request);
    expect(() => request(TRUSTED, 'rm -rf', {})).toThrow(/unknown local-API request/);
    expect(() => request(TRUSTED, 'reauth', { tenant: 'acme', extra: 1 })).toThrow();
    expect(() => request(TRUSTED, 'setTenantEnabled', { tenant: 'acme', enabled: 'yes' })).toThrow();

    agent.reply('reauth', () => ({
      status: 200,
      body: { tenant: 'globex', started: true, loginUrl: 'https://idp.test/login?x=1' },
    }));
    expect(await request(TRUSTED, 'reauth', { tenant: 'globex' })).toMatchObject({ started: true });
    expect(fake.shell.openExternal).not.toHaveBeenCalled();
    // The window hands the sign-in URL back to be opened; only that one, only from our bundle.
    const open = handler(fake, IPC_CHANNELS.openLoginUrl);
    expect(() => open(UNTRUSTED, 'https://idp.test/login?x=1')).toThrow(/untrusted/);
    expect(() => open(TRUSTED, 'https://evil.example/')).toThrow(/not a sign-in URL/);
    expect(() => open(TRUSTED, { href: 'https://idp.test/login?x=1' })).toThrow(/string/);
    open(TRUSTED, 'https://idp.test/login?x=1');
    expect(fake.shell.openExternal).toHaveBeenCalledExactlyOnceWith('https://idp.test/login?x=1');
    // Tenants are added and removed by the CLI or the administrator, never from the window.
    expect(() => request(TRUSTED, 'addTenant', {})).toThrow(/unknown local-API request/);
    expect(() => request(TRUSTED, 'removeTenant', { tenant: 'acme' })).toThrow(/unknown local-API request/);

    // Tray "Open" creates the hardened window from the app paths; pushes then reach it.
    clickMenu(fake, 'Open zcc');
    const win = fake.BrowserWindow.instances[0];
    if (!win) throw new Error('no window');
    expect(win.options.webPreferences).toMatchObject({ preload: '/opt/zcc/out/preload/preload.cjs', sandbox: true });
    expect(win.loaded).toEqual(['/opt/zcc/out/renderer/index.html']);
    const healthy = { ...FIXTURE_STATUS, tenants: FIXTURE_STATUS.tenants.slice(0, 1) };
    agent.push(healthy);
    await vi.waitFor(() => expect(tray.image.path).toBe('/opt/zcc/resources/icons/tray-connected.png'));
    expect(win.webContents.sent.at(-1)).toEqual({ channel: IPC_CHANNELS.status, payload: healthy });

    // Re-authenticate from the tray acts on the connected tenant now nobody needs it.
    clickMenu(fake, 'Re-authenticate');
    await vi.waitFor(() => expect(agent.requests.at(-1)).toEqual({ name: 'reauth', body: { tenant: 'acme' } }));

    // A second launch focuses the existing window rather than opening another.
    fake.app.emit('second-instance');
    expect(fake.BrowserWindow.instances).toHaveLength(1);

    // Agent gone: error icon and a push to the window.
    await agent.close();
    await vi.waitFor(() => expect(tray.image.path).toBe('/opt/zcc/resources/icons/tray-error.png'));
    expect(win.webContents.sent.at(-1)?.channel).toBe(IPC_CHANNELS.agentError);
    agent = await startFakeAgent(FIXTURE_STATUS); // for afterEach

    clickMenu(fake, 'Quit');
    expect(fake.app.quit).toHaveBeenCalledOnce();
    fake.app.emit('will-quit');
    expect(tray.destroyed).toBe(true);
  });
});

describe('main.ts launch', () => {
  it('opens the window once the settings say so, and registers no login item on Linux (the XDG autostart entry does it)', async () => {
    agent.reply('settings', () => ({ status: 200, body: { settings: [{ key: 'ui.hideWindowOnLaunch', value: false, managed: false }] } }));
    const fake = await boot(true);
    await vi.waitFor(() => expect(fake.BrowserWindow.instances).toHaveLength(1));
    if (process.platform === 'linux') expect(fake.app.setLoginItemSettings).not.toHaveBeenCalled();
    fake.app.emit('will-quit');
  });
});

describe('main.ts with the agent settings and notifications', () => {
  it('hides the menu items ui.hiddenMenuItems names and notifies state changes once', async () => {
    agent.reply('settings', () => ({
      status: 200,
      body: {
        settings: [
          { key: 'ui.hiddenMenuItems', value: ['quit'], managed: true },
          { key: 'ui.hideWindowOnLaunch', value: true, managed: true },
        ],
      },
    }));
    agent.reply('setTenantEnabled', (body) => ({ status: 200, body }));
    const fake = await boot(true);
    const tray = fake.Tray.instances[0];
    if (!tray) throw new Error('no tray');
    const labels = (): unknown[] => (tray.menu?.template ?? []).map((i) => i.label);
    await vi.waitFor(() => expect(labels()).not.toContain('Quit'));
    expect(labels()).toContain('Open zcc');
    // Globex needs sign-in in the fixture: one notification, however often the status comes.
    await vi.waitFor(() => expect(fake.Notification.shown.map((n) => n.title)).toEqual(['Sign-in required']));
    // Clicking a notification opens the window.
    expect(fake.BrowserWindow.instances).toHaveLength(0);
    fake.Notification.instances[0]?.emit('click');
    expect(fake.BrowserWindow.instances).toHaveLength(1);
    const safe = { ...FIXTURE_STATUS, safeMode: true };
    agent.push(safe);
    agent.push({ ...safe, version: 'again' });
    await vi.waitFor(() => expect(tray.image.path).toBe('/opt/zcc/resources/icons/tray-safe-mode.png'));
    agent.push(FIXTURE_STATUS);
    await vi.waitFor(() => expect(fake.Notification.shown.map((n) => n.title)).toEqual(['Sign-in required', 'Safe mode', 'Safe mode ended']));
    // The toggles act on the tenants the policy lets the user switch.
    const toggle = tray.menu?.template.find((i) => i.label === 'Turn Acme Corp off');
    if (!toggle || typeof toggle.click !== 'function') throw new Error('no toggle');
    (toggle.click as () => void)();
    await vi.waitFor(() => expect(agent.requests.at(-1)).toEqual({ name: 'setTenantEnabled', body: { tenant: 'acme', enabled: false } }));
    fake.app.emit('will-quit');
  });
});
