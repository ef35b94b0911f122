/**
 * The typed bridge the renderer sees as `window.zcc`. The preload implements it over Electron
 * IPC; a browser build (demo UI on loopback) or a test may implement it any other way. The
 * renderer depends on this interface and on src/common only.
 */
import type {
  AgentStatus,
  LocalApiRequest,
  LocalApiRequestName,
  LocalApiResponse,
} from './localapi-schema.js';

/** The global name under which the bridge is exposed (`window.zcc`). */
export const BRIDGE_KEY = 'zcc';

/** IPC channel names shared by preload (ipcRenderer) and main (ipcMain). */
export const IPC_CHANNELS = {
  /** invoke → AgentStatus (rejects when the agent is unreachable). */
  getStatus: 'zcc:get-status',
  /** invoke(name, args) → the local-API response for `name` (a {@link UiRequestName} only). */
  request: 'zcc:request',
  /** invoke(url) → opens a sign-in URL the agent handed out in the system browser. */
  openLoginUrl: 'zcc:open-login-url',
  /** main → renderer push: AgentStatus after every change. */
  status: 'zcc:status',
  /** main → renderer push: string reason when the agent became unreachable. */
  agentError: 'zcc:agent-error',
} as const;
export type IpcChannel = (typeof IPC_CHANNELS)[keyof typeof IPC_CHANNELS];

/**
 * The local-API requests the UI may make. Adding or removing tenants is left to the CLI and
 * the administrator: a compromised renderer cannot pin another cloud's CA.
 */
export const UI_REQUEST_NAMES = [
  'status',
  'reauth',
  'setTenantEnabled',
  'settings',
  'setSetting',
  'diagnostics',
  'exportDiagnostics',
] as const satisfies readonly LocalApiRequestName[];
export type UiRequestName = (typeof UI_REQUEST_NAMES)[number];

export function isUiRequestName(name: unknown): name is UiRequestName {
  return typeof name === 'string' && (UI_REQUEST_NAMES as readonly string[]).includes(name);
}

export type Unsubscribe = () => void;

export interface ZccBridge {
  /** The agent's current state; rejects when the agent cannot be reached. */
  getStatus(): Promise<AgentStatus>;
  /** Called with the full status after every change; returns an unsubscribe function. */
  onStatus(cb: (status: AgentStatus) => void): Unsubscribe;
  /** Called with a reason whenever the agent stops being reachable. */
  onAgentError(cb: (reason: string) => void): Unsubscribe;
  /** A local-API request the UI may make, typed by name. */
  request<K extends UiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>>;
  /**
   * Opens the `loginUrl` of a `reauth` answer in the user's browser (Electron: the system
   * browser, after the main process checked it; web UI: a new tab). The renderer itself never
   * loads it.
   */
  openLoginUrl(url: string): Promise<void>;
}
