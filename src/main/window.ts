/**
 * The UI window and the hardening around it: isolated sandboxed renderer without Node, no
 * navigation, no new windows, no permissions, no downloads, a strict CSP, and no request to
 * anything but the app's own file:// bundle.
 */
import { BrowserWindow, type App, type Session, type WebContents, type WebPreferences } from 'electron';
import { isAppBundleUrl, withCsp } from './security.js';

export interface MainWindowOptions {
  /** Absolute path of the bundled preload (CommonJS; sandboxed preloads cannot be ESM). */
  preload: string;
  /** Absolute path of the renderer's index.html. */
  rendererIndex: string;
  /** The renderer bundle directory: the only place the window may load from. */
  rendererDir: string;
  /** Allow DevTools (development only). */
  devTools?: boolean;
}

export function hardenedWebPreferences(preload: string, devTools = false): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    experimentalFeatures: false,
    navigateOnDragDrop: false,
    safeDialogs: true,
    spellcheck: false,
    devTools,
  };
}

const hardenedSessions = new WeakSet<Session>();

/**
 * Session-wide rules: deny every permission, refuse foreign requests, force our CSP.
 * `allowDevTools` lets devtools:// through (development builds only).
 */
export function hardenSession(ses: Session, bundleDir: string, allowDevTools = false): void {
  if (hardenedSessions.has(ses)) return;
  hardenedSessions.add(ses);
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.webRequest.onBeforeRequest((details, callback) => {
    const devtools = allowDevTools && details.url.startsWith('devtools://');
    callback({ cancel: !devtools && !isAppBundleUrl(details.url, bundleDir) });
  });
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: withCsp(details.responseHeaders) });
  });
  ses.on('will-download', (event) => event.preventDefault());
}

/** Per-contents rules: the UI is one page; it never navigates or opens anything. */
export function hardenWebContents(contents: WebContents): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

/** Applies {@link hardenWebContents} to every web contents the app ever creates. */
export function installGlobalGuards(app: App): void {
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents));
}

export function createMainWindow(opts: MainWindowOptions): BrowserWindow {
  const win = new BrowserWindow({
    width: 440,
    height: 640,
    minWidth: 320,
    minHeight: 360,
    show: false,
    title: 'zcc',
    autoHideMenuBar: true,
    webPreferences: hardenedWebPreferences(opts.preload, opts.devTools ?? false),
  });
  hardenSession(win.webContents.session, opts.rendererDir, opts.devTools ?? false);
  hardenWebContents(win.webContents);
  win.once('ready-to-show', () => win.show());
  win.loadFile(opts.rendererIndex).catch((err: unknown) => {
    console.error('zcc: failed to load the UI', err);
  });
  return win;
}
