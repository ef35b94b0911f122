/**
 * A fake `electron` module for unit tests (`vi.mock('electron', () => import('./fake-electron.js'))`):
 * just enough of app, BrowserWindow, session, Tray, Menu, ipcMain/ipcRenderer and contextBridge
 * to run src/main and src/preload without the Electron binary, recording what they do.
 */
import { vi } from 'vitest';

type Listener = (...args: unknown[]) => unknown;

export class FakeEmitter {
  readonly listeners = new Map<string, Listener[]>();
  on(event: string, fn: Listener): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn]);
    return this;
  }
  once(event: string, fn: Listener): this {
    return this.on(event, fn);
  }
  removeListener(event: string, fn: Listener): this {
    this.listeners.set(event, (this.listeners.get(event) ?? []).filter((l) => l !== fn));
    return this;
  }
  emit(event: string, ...args: unknown[]): void {
    for (const fn of this.listeners.get(event) ?? []) fn(...args);
  }
}

/** An Electron-style event whose default can be prevented. */
export function fakeEvent(): { preventDefault: ReturnType<typeof vi.fn>; defaultPrevented: () => boolean } {
  const preventDefault = vi.fn();
  return { preventDefault, defaultPrevented: () => preventDefault.mock.calls.length > 0 };
}

export type WebRequestCallback = (response: Record<string, unknown>) => void;
export type WebRequestListener = (details: Record<string, unknown>, callback: WebRequestCallback) => void;

export class FakeSession extends FakeEmitter {
  permissionRequestHandler: Listener | null = null;
  permissionCheckHandler: Listener | null = null;
  beforeRequest: WebRequestListener | null = null;
  headersReceived: WebRequestListener | null = null;
  readonly webRequest = {
    onBeforeRequest: (fn: WebRequestListener) => {
      this.beforeRequest = fn;
    },
    onHeadersReceived: (fn: WebRequestListener) => {
      this.headersReceived = fn;
    },
  };
  setPermissionRequestHandler(fn: Listener | null): void {
    this.permissionRequestHandler = fn;
  }
  setPermissionCheckHandler(fn: Listener | null): void {
    this.permissionCheckHandler = fn;
  }
}

export const session = { defaultSession: new FakeSession() };

export class FakeWebContents extends FakeEmitter {
  session: FakeSession = session.defaultSession;
  windowOpenHandler: Listener | null = null;
  readonly sent: { channel: string; payload: unknown }[] = [];
  setWindowOpenHandler(fn: Listener): void {
    this.windowOpenHandler = fn;
  }
  send(channel: string, payload: unknown): void {
    this.sent.push({ channel, payload });
  }
}

export class BrowserWindow extends FakeEmitter {
  static readonly instances: BrowserWindow[] = [];
  readonly webContents = new FakeWebContents();
  readonly loaded: string[] = [];
  destroyed = false;
  visible = false;
  constructor(readonly options: Record<string, unknown>) {
    super();
    BrowserWindow.instances.push(this);
  }
  loadFile(file: string): Promise<void> {
    this.loaded.push(file);
    return Promise.resolve();
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  isMinimized(): boolean {
    return false;
  }
  restore(): void {}
  show(): void {
    this.visible = true;
  }
  focus(): void {}
}

class FakeApp extends FakeEmitter {
  gotLock = true;
  appPath = '/opt/zcc';
  isPackaged = true;
  readonly requestSingleInstanceLock = vi.fn(() => this.gotLock);
  readonly quit = vi.fn();
  readonly exit = vi.fn();
  readonly enableSandbox = vi.fn();
  readonly setLoginItemSettings = vi.fn();
  readonly ready = Promise.resolve();
  whenReady(): Promise<void> {
    return this.ready;
  }
  getAppPath(): string {
    return this.appPath;
  }
}
export const app = new FakeApp();

export const ipcMain = {
  handlers: new Map<string, Listener>(),
  handle(channel: string, fn: Listener): void {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
    this.handlers.set(channel, fn);
  },
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  },
};

export const shell = { openExternal: vi.fn(() => Promise.resolve()), showItemInFolder: vi.fn() };

export const nativeImage = { createFromPath: (p: string) => ({ path: p }) };

export const Menu = { buildFromTemplate: (template: unknown[]) => ({ template }) };

export class Tray extends FakeEmitter {
  static readonly instances: Tray[] = [];
  image: { path: string };
  tooltip = '';
  menu: { template: Record<string, unknown>[] } | undefined;
  destroyed = false;
  constructor(image: { path: string }) {
    super();
    this.image = image;
    Tray.instances.push(this);
  }
  setImage(image: { path: string }): void {
    this.image = image;
  }
  setToolTip(t: string): void {
    this.tooltip = t;
  }
  setContextMenu(menu: { template: Record<string, unknown>[] }): void {
    this.menu = menu;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

export class Notification extends FakeEmitter {
  static readonly shown: { title: string; body: string }[] = [];
  static readonly instances: Notification[] = [];
  static supported = true;
  static isSupported(): boolean {
    return Notification.supported;
  }
  constructor(readonly options: { title: string; body: string }) {
    super();
    Notification.instances.push(this);
  }
  show(): void {
    Notification.shown.push({ title: this.options.title, body: this.options.body });
  }
}

export const contextBridge = {
  exposed: new Map<string, unknown>(),
  exposeInMainWorld(key: string, api: unknown): void {
    this.exposed.set(key, api);
  },
};

export class FakeIpcRenderer extends FakeEmitter {
  readonly invoke = vi.fn((..._args: unknown[]): Promise<unknown> => Promise.resolve(undefined));
}
export const ipcRenderer = new FakeIpcRenderer();

export default { app, BrowserWindow, session, ipcMain, ipcRenderer, contextBridge, shell, nativeImage, Menu, Tray, Notification };

/** Forgets everything recorded so far (the mocked module may outlive vi.resetModules). */
export function resetFakeElectron(): void {
  BrowserWindow.instances.length = 0;
  Tray.instances.length = 0;
  Notification.shown.length = 0;
  Notification.instances.length = 0;
  Notification.supported = true;
  app.listeners.clear();
  app.gotLock = true;
  for (const fn of [app.requestSingleInstanceLock, app.quit, app.exit, app.enableSandbox]) fn.mockClear();
  session.defaultSession = new FakeSession();
  ipcMain.handlers.clear();
  shell.openExternal.mockClear();
  shell.showItemInFolder.mockClear();
  contextBridge.exposed.clear();
  ipcRenderer.listeners.clear();
  ipcRenderer.invoke.mockClear();
}
