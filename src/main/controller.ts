/**
 * The tray app's state holder, electron-free: follows the agent's watch stream, keeps the last
 * status, pushes changes to the tray and the window, and carries out tray/renderer actions.
 * main.ts injects the Electron side (tray, window, shell) as plain functions.
 */
import { IPC_CHANNELS, type IpcChannel } from '../common/bridge.js';
import type {
  AgentStatus,
  LocalApiRequest,
  LocalApiRequestName,
  LocalApiResponse,
} from '../common/localapi-schema.js';
import type { AgentClient } from '../common/localapi-client.js';
import { isExternalBrowserUrl } from './security.js';
import type { MaybeStatus, TrayAction } from './tray-state.js';

export interface ControllerDeps {
  client: AgentClient;
  /** Tray update; `undefined` means the agent is not reachable. */
  onStatus(status: MaybeStatus): void;
  /** Push to the UI window, if one is open. */
  send(channel: IpcChannel, payload: unknown): void;
  openExternal(url: string): void;
  showItemInFolder(path: string): void;
  showWindow(): void;
  quit(): void;
  logError(message: string, err: unknown): void;
}

export interface Controller {
  /** Starts following the agent; returns the stop function. */
  start(): () => void;
  latest(): MaybeStatus;
  getStatus(): Promise<AgentStatus>;
  request<K extends LocalApiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>>;
  handleTrayAction(action: TrayAction): void;
}

export function createController(deps: ControllerDeps): Controller {
  let latest: MaybeStatus;
  let reachable: boolean | undefined;

  const publish = (status: AgentStatus): void => {
    latest = status;
    reachable = true;
    deps.onStatus(status);
    deps.send(IPC_CHANNELS.status, status);
  };

  const unreachable = (err: Error): void => {
    latest = undefined;
    if (reachable === false) return; // already reported; the client keeps retrying
    reachable = false;
    deps.onStatus(undefined);
    deps.send(IPC_CHANNELS.agentError, `Agent not reachable: ${err.message}`);
  };

  async function request<K extends LocalApiRequestName>(
    name: K,
    args: LocalApiRequest<K>,
  ): Promise<LocalApiResponse<K>> {
    const res = await deps.client.request(name, args);
    if (name === 'reauth') {
      const { loginUrl } = res as LocalApiResponse<'reauth'>;
      if (loginUrl && isExternalBrowserUrl(loginUrl)) deps.openExternal(loginUrl);
    }
    return res;
  }

  const runAction = async (action: TrayAction): Promise<void> => {
    switch (action.type) {
      case 'open':
        deps.showWindow();
        return;
      case 'quit':
        deps.quit();
        return;
      case 'reauth':
        await Promise.all(action.tenants.map((tenant) => request('reauth', { tenant })));
        return;
      case 'exportDiagnostics': {
        const { path } = await request('exportDiagnostics', {});
        deps.showItemInFolder(path);
        return;
      }
    }
  };

  return {
    start: () => deps.client.watch({ onEvent: (ev) => publish(ev.status), onError: unreachable }),
    latest: () => latest,
    getStatus: async () => latest ?? (await deps.client.request('status', {})),
    request,
    handleTrayAction: (action) => {
      runAction(action).catch((err: unknown) => deps.logError(`tray action ${action.type} failed`, err));
    },
  };
}
