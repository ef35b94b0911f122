/** src/main/window.ts against a fake `electron`: the window's hardening, without the binary. */
import { describe, expect, it, vi } from 'vitest';
import * as fake from './fake-electron.js';

vi.mock('electron', () => import('./fake-electron.js'));

const { createMainWindow, hardenSession, installGlobalGuards } = await import('../../src/main/window.js');

const OPTS = {
  preload: '/opt/zcc/out/preload/preload.cjs',
  rendererIndex: '/opt/zcc/out/renderer/index.html',
  rendererDir: '/opt/zcc/out/renderer',
};

function openWindow(): fake.BrowserWindow {
  const before = fake.BrowserWindow.instances.length;
  createMainWindow(OPTS);
  const win = fake.BrowserWindow.instances[before];
  if (!win) throw new Error('no BrowserWindow created');
  return win;
}

function webRequest(listener: fake.WebRequestListener | null, details: Record<string, unknown>) {
  if (!listener) throw new Error('no webRequest listener installed');
  let answer: Record<string, unknown> | undefined;
  listener(details, (r) => {
    answer = r;
  });
  return answer;
}

describe('createMainWindow', () => {
  it('creates a hardened BrowserWindow and loads only the bundled index.html', () => {
    const win = openWindow();
    expect(win.options.webPreferences).toMatchObject({
      preload: OPTS.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      devTools: false,
    });
    expect(win.options.show).toBe(false);
    expect(win.loaded).toEqual([OPTS.rendererIndex]);
    win.emit('ready-to-show');
    expect(win.visible).toBe(true);
  });

  it.each(['will-navigate', 'will-redirect', 'will-attach-webview'])('prevents %s', (name) => {
    const win = openWindow();
    const ev = fake.fakeEvent();
    win.webContents.emit(name, ev, 'https://evil.example/');
    expect(ev.defaultPrevented()).toBe(true);
  });

  it('denies window.open for every URL', () => {
    const win = openWindow();
    for (const url of ['https://evil.example/', 'file:///etc/passwd', 'about:blank']) {
      expect(win.webContents.windowOpenHandler?.({ url })).toEqual({ action: 'deny' });
    }
  });

  it('denies every permission request and check', () => {
    const ses = openWindow().webContents.session;
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal']) {
      const callback = vi.fn();
      ses.permissionRequestHandler?.({}, permission, callback, {});
      expect(callback).toHaveBeenCalledExactlyOnceWith(false);
      expect(ses.permissionCheckHandler?.(null, permission, 'file://', {})).toBe(false);
    }
  });

  it('blocks every request that is not to the app bundle', () => {
    const ses = openWindow().webContents.session;
    const cancel = (url: string) => webRequest(ses.beforeRequest, { url })?.cancel;
    expect(cancel('file:///opt/zcc/out/renderer/index.html')).toBe(false);
    expect(cancel('file:///opt/zcc/out/renderer/app.js')).toBe(false);
    for (const url of [
      'https://example.com/',
      'http://127.0.0.1:8080/',
      'ws://127.0.0.1/',
      'file:///etc/passwd',
      'file:///opt/zcc/out/renderer/../preload/preload.cjs',
      'file:///opt/zcc/out/renderer-evil/app.js',
      'file://remote-host/opt/zcc/out/renderer/app.js',
      'data:text/html,hi',
      'blob:file:///x',
      'devtools://devtools/bundled/inspector.html',
    ]) {
      expect(cancel(url), url).toBe(true);
    }
  });

  it('replaces any Content-Security-Policy with the strict one', () => {
    const ses = openWindow().webContents.session;
    const answer = webRequest(ses.headersReceived, {
      url: 'file:///opt/zcc/out/renderer/index.html',
      responseHeaders: { 'content-security-policy': ["default-src *"], 'X-Other': ['1'] },
    });
    const headers = answer?.responseHeaders as Record<string, string[]>;
    expect(headers['content-security-policy']).toBeUndefined();
    expect(headers['X-Other']).toEqual(['1']);
    const csp = headers['Content-Security-Policy']?.[0] ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'none'", "object-src 'none'", "frame-ancestors 'none'"]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
  });

  it('cancels downloads', () => {
    const ses = openWindow().webContents.session;
    const ev = fake.fakeEvent();
    ses.emit('will-download', ev, {});
    expect(ev.defaultPrevented()).toBe(true);
  });

  it('lets devtools:// through only for development windows', () => {
    const ses = new fake.FakeSession();
    hardenSession(ses as unknown as Parameters<typeof hardenSession>[0], OPTS.rendererDir, true);
    expect(webRequest(ses.beforeRequest, { url: 'devtools://devtools/bundled/inspector.html' })?.cancel).toBe(false);
    expect(webRequest(ses.beforeRequest, { url: 'https://example.com/' })?.cancel).toBe(true);
  });

  it('hardens a session only once', () => {
    const ses = new fake.FakeSession();
    const spy = vi.spyOn(ses, 'setPermissionRequestHandler');
    // The fake is structurally what window.ts needs; the cast stands in for Electron's Session.
    hardenSession(ses as unknown as Parameters<typeof hardenSession>[0], OPTS.rendererDir);
    hardenSession(ses as unknown as Parameters<typeof hardenSession>[0], OPTS.rendererDir);
    expect(spy).toHaveBeenCalledTimes(1);
  });
});

describe('installGlobalGuards', () => {
  it('hardens every web contents the app creates', () => {
    installGlobalGuards(fake.app as unknown as Parameters<typeof installGlobalGuards>[0]);
    const contents = new fake.FakeWebContents();
    fake.app.emit('web-contents-created', {}, contents);
    const ev = fake.fakeEvent();
    contents.emit('will-navigate', ev, 'https://evil.example/');
    expect(ev.defaultPrevented()).toBe(true);
    expect(contents.windowOpenHandler?.({ url: 'https://evil.example/' })).toEqual({ action: 'deny' });
  });
});
