/**
 * ipcMain handlers behind the preload's bridge. Every call must come from a frame showing the
 * app's own bundle, and every argument is validated against the local-API schema: the renderer
 * is treated as untrusted input.
 */
import { ipcMain, type IpcMainInvokeEvent } from 'electron';
import { IPC_CHANNELS } from '../common/bridge.js';
import { isLocalApiRequestName, parseLocalApiRequest } from '../common/localapi-schema.js';
import type { Controller } from './controller.js';
import { isAppBundleUrl } from './security.js';

export function assertTrustedSender(event: IpcMainInvokeEvent, bundleDir: string): void {
  const url = event.senderFrame?.url;
  if (!url || !isAppBundleUrl(url, bundleDir)) {
    throw new Error('zcc: IPC from an untrusted frame refused');
  }
}

/** Registers the handlers; returns a function removing them again. */
export function registerIpc(controller: Controller, bundleDir: string): () => void {
  ipcMain.handle(IPC_CHANNELS.getStatus, (event) => {
    assertTrustedSender(event, bundleDir);
    return controller.getStatus();
  });
  ipcMain.handle(IPC_CHANNELS.request, (event, name: unknown, args: unknown) => {
    assertTrustedSender(event, bundleDir);
    if (!isLocalApiRequestName(name)) throw new Error('zcc: unknown local-API request');
    return controller.request(name, parseLocalApiRequest(name, args));
  });
  return () => {
    ipcMain.removeHandler(IPC_CHANNELS.getStatus);
    ipcMain.removeHandler(IPC_CHANNELS.request);
  };
}
