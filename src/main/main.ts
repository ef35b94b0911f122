/**
 * Electron main entry: one instance per user session; on ready a tray icon follows the agent
 * and the UI window opens on demand. The app holds no secrets and talks only to the agent's
 * local API. Logic lives in pure modules (controller, tray-state, security) next to this file.
 */
import { BrowserWindow, Notification, app, shell } from 'electron';
import { LOCALAPI_DEFAULT_SOCKET, LOCALAPI_SOCKET_ENV } from '../common/localapi-schema.js';
import { createAgentClient } from '../common/localapi-client.js';
import { appPaths } from './app-paths.js';
import { createController, type Controller } from './controller.js';
import { registerIpc } from './ipc.js';
import { createNotifier } from './notifier.js';
import { createTray, type ZccTray } from './tray.js';
import { HIDDEN_ARG, openWindowOnLaunch, traySettingsFrom } from './ui-settings.js';
import { createMainWindow, installGlobalGuards } from './window.js';

let win: BrowserWindow | undefined;
let tray: ZccTray | undefined;
let controller: Controller | undefined;

function showWindow(): void {
  if (win && !win.isDestroyed()) {
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
    return;
  }
  win = createMainWindow({ ...appPaths(app.getAppPath()), devTools: !app.isPackaged });
  win.on('closed', () => {
    win = undefined;
  });
}

function start(): void {
  const paths = appPaths(app.getAppPath());
  const socketPath = process.env[LOCALAPI_SOCKET_ENV] ?? LOCALAPI_DEFAULT_SOCKET;
  const notifier = createNotifier({
    show: (n) => {
      if (!Notification.isSupported()) return;
      const note = new Notification({ title: n.title, body: n.body });
      note.on('click', showWindow);
      note.show();
    },
  });
  // The first settings answer decides whether this start opens the window.
  let launched = false;
  const ctl = createController({
    client: createAgentClient({ socketPath }),
    onStatus: (status) => {
      tray?.update(status);
      notifier.update(status);
    },
    onSettings: (settings) => {
      const s = traySettingsFrom(settings);
      if (!launched) {
        launched = true;
        if (openWindowOnLaunch(process.argv, s)) showWindow();
      }
      tray?.update(ctl.latest(), { hiddenItems: s.hiddenMenuItems });
      if (s.authWarningBeforeSeconds !== undefined) notifier.setOptions({ reauthWarnSeconds: s.authWarningBeforeSeconds });
    },
    send: (channel, payload) => {
      if (win && !win.isDestroyed()) win.webContents.send(channel, payload);
    },
    openExternal: (url) => void shell.openExternal(url),
    showItemInFolder: (file) => shell.showItemInFolder(file),
    showWindow,
    quit: () => app.quit(),
    logError: (message, err) => console.error(`zcc: ${message}`, err),
  });
  controller = ctl;
  registerIpc(ctl, paths.rendererDir);
  tray = createTray(paths.iconsDir, (action) => ctl.handleTrayAction(action));
  const stop = ctl.start();
  // "Sign-in expires soon" becomes true with time alone.
  const ticker = setInterval(() => notifier.tick(), 60_000);
  ticker.unref();
  app.once('will-quit', () => {
    clearInterval(ticker);
    stop();
    tray?.destroy();
  });
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.enableSandbox();
  installGlobalGuards(app);
  // Starts with the user's session. Linux has no login-item API: the packages install an XDG
  // autostart entry (resources/autostart) that passes the same flag.
  if (app.isPackaged && process.platform !== 'linux') app.setLoginItemSettings({ openAtLogin: true, args: [HIDDEN_ARG] });
  app.on('second-instance', () => {
    if (controller) showWindow();
  });
  // A tray app keeps running with no window open; only "Quit" ends it.
  app.on('window-all-closed', () => undefined);
  app
    .whenReady()
    .then(start)
    .catch((err: unknown) => {
      console.error('zcc: tray app failed to start', err);
      app.exit(1);
    });
}
