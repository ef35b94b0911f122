/**
 * ipcMain handlers behind the preload's bridge. Every call must come from a frame showing the
 * app's own bundle, and every argument is validated: only the requests the UI may make
 * (UI_REQUEST_NAMES), their arguments against the local-API schema, and only sign-in URLs the
 * agent handed out are opened. The renderer is treated as untrusted input.
 */
import { ipcMain, type IpcMainInvokeEvent } from 'electron';
import { IPC_CHANNELS, isUiRequestName } from '../common/bridge.js';
import { parseLocalApiRequest } from '../common/localapi-schema.js';
import type { Controller } from './controller.js';
import { isAppBundleUrl } from './security.js';

export function assertTrustedSender(event: IpcMainInvokeEvent, bundleDir: string): void {
  const url = event.senderFrame?.url;
  if (!url || !isAppBundleUrl(url, bundleDir)) {
    throw new Error('zcc: IPC from an untrusted frame refused');
  }
}

const HANDLED = [IPC_CHANNELS.getStatus, IPC_CHANNELS.request, IPC_CHANNELS.openLoginUrl] as const;

/** Registers the handlers; returns a function removing them again. */
export function registerIpc(controller: Controller, bundleDir: string): () => void {
  ipcMain.handle(IPC_CHANNELS.getStatus, (event) => {
    assertTrustedSender(event, bundleDir);
    return controller.getStatus();
  });
  ipcMain.handle(IPC_CHANNELS.request, (event, name: unknown, args: unknown) => {
    assertTrustedSender(event, bundleDir);
    if (!isUiRequestName(name)) throw new Error('zcc: unknown local-API request');
    return controller.request(name, parseLocalApiRequest(name, args));
  });
  ipcMain.handle(IPC_CHANNELS.openLoginUrl, (event, url: unknown) => {
    assertTrustedSender(event, bundleDir);
    if (typeof url !== 'string' || url.length > 8192) throw new Error('zcc: sign-in URL must be a string');
    controller.openLoginUrl(url);
  });
  return () => {
    for (const channel of HANDLED) ipcMain.removeHandler(channel);
  };
}
