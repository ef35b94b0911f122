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
  Setting,
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
  /** The agent's settings, fetched when the agent (re)appears and whenever its configuration changes. */
  onSettings?(settings: Setting[]): void;
  /** Clock for the sign-in URL bookkeeping (tests). */
  now?(): number;
}

/** How long a sign-in URL from the agent may be opened from the window. */
export const LOGIN_URL_TTL_MS = 15 * 60_000;

export interface Controller {
  /** Starts following the agent; returns the stop function. */
  start(): () => void;
  latest(): MaybeStatus;
  getStatus(): Promise<AgentStatus>;
  request<K extends LocalApiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>>;
  /**
   * Opens a sign-in URL in the system browser: only http(s), and only a `loginUrl` the agent
   * itself handed out in a `reauth` answer lately. Throws otherwise.
   */
  openLoginUrl(url: string): void;
  handleTrayAction(action: TrayAction): void;
}

export function createController(deps: ControllerDeps): Controller {
  let latest: MaybeStatus;
  let reachable: boolean | undefined;
  /** JSON of the last status's `config` for which settings were fetched; undefined = fetch. */
  let settingsFor: string | undefined;
  const now = deps.now ?? Date.now;
  /** Sign-in URLs from `reauth` answers, with the time they stop being openable. */
  const loginUrls = new Map<string, number>();

  const refreshSettings = (): void => {
    if (!deps.onSettings) return;
    const onSettings = deps.onSettings;
    deps.client.request('settings', {}).then(
      (res) => onSettings(res.settings),
      (err: unknown) => deps.logError('reading the agent settings failed', err),
    );
  };

  const publish = (status: AgentStatus): void => {
    latest = status;
    reachable = true;
    deps.onStatus(status);
    deps.send(IPC_CHANNELS.status, status);
    const config = JSON.stringify(status.config ?? null);
    if (config !== settingsFor) {
      settingsFor = config;
      refreshSettings();
    }
  };

  const unreachable = (err: Error): void => {
    latest = undefined;
    if (reachable === false) return; // already reported; the client keeps retrying
    reachable = false;
    settingsFor = undefined;
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
      if (loginUrl) {
        for (const [url, until] of loginUrls) if (until <= now()) loginUrls.delete(url);
        loginUrls.set(loginUrl, now() + LOGIN_URL_TTL_MS);
      }
    }
    if (name === 'setSetting') refreshSettings();
    return res;
  }

  function openLoginUrl(url: string): void {
    if (!isExternalBrowserUrl(url)) throw new Error('zcc: only http(s) sign-in URLs are opened');
    const until = loginUrls.get(url);
    if (until === undefined || until <= now()) throw new Error('zcc: not a sign-in URL from the agent');
    deps.openExternal(url);
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
        // From the tray there is no window to do it: open each sign-in page here.
        await Promise.all(
          action.tenants.map(async (tenant) => {
            const { loginUrl } = await request('reauth', { tenant });
            if (loginUrl) openLoginUrl(loginUrl);
          }),
        );
        return;
      case 'setTenantEnabled':
        await request('setTenantEnabled', { tenant: action.tenant, enabled: action.enabled });
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
    openLoginUrl,
    handleTrayAction: (action) => {
      runAction(action).catch((err: unknown) => deps.logError(`tray action ${action.type} failed`, err));
    },
  };
}
