/**
 * Sandboxed preload: exposes the typed ZccBridge as `window.zcc` and nothing else. The renderer
 * never sees ipcRenderer or event objects, only plain data. Bundled to one CommonJS file
 * (out/preload/preload.cjs) by scripts/build-renderer.ts, since sandboxed preloads cannot be ESM.
 */
import { contextBridge, ipcRenderer, type IpcRenderer, type IpcRendererEvent } from 'electron';
import { BRIDGE_KEY, IPC_CHANNELS, type IpcChannel, type UiRequestName, type Unsubscribe, type ZccBridge } from '../common/bridge.js';
import type { AgentStatus, LocalApiResponse } from '../common/localapi-schema.js';

export type BridgeIpc = Pick<IpcRenderer, 'invoke' | 'on' | 'removeListener'>;

export function createBridge(ipc: BridgeIpc): ZccBridge {
  const subscribe = <T>(channel: IpcChannel, cb: (payload: T) => void): Unsubscribe => {
    const listener = (_event: IpcRendererEvent, payload: T): void => cb(payload);
    ipc.on(channel, listener);
    return () => {
      ipc.removeListener(channel, listener);
    };
  };
  return Object.freeze({
    getStatus: () => ipc.invoke(IPC_CHANNELS.getStatus) as Promise<AgentStatus>,
    onStatus: (cb: (status: AgentStatus) => void) => subscribe(IPC_CHANNELS.status, cb),
    onAgentError: (cb: (reason: string) => void) => subscribe(IPC_CHANNELS.agentError, cb),
    request: <K extends UiRequestName>(name: K, args: unknown) =>
      ipc.invoke(IPC_CHANNELS.request, name, args) as Promise<LocalApiResponse<K>>,
    openLoginUrl: async (url: string): Promise<void> => {
      await ipc.invoke(IPC_CHANNELS.openLoginUrl, url);
    },
  });
}

contextBridge.exposeInMainWorld(BRIDGE_KEY, createBridge(ipcRenderer));
