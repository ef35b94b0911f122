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
  /** invoke(name, args) → the local-API response for `name`. */
  request: 'zcc:request',
  /** main → renderer push: AgentStatus after every change. */
  status: 'zcc:status',
  /** main → renderer push: string reason when the agent became unreachable. */
  agentError: 'zcc:agent-error',
} as const;
export type IpcChannel = (typeof IPC_CHANNELS)[keyof typeof IPC_CHANNELS];

export type Unsubscribe = () => void;

export interface ZccBridge {
  /** The agent's current state; rejects when the agent cannot be reached. */
  getStatus(): Promise<AgentStatus>;
  /** Called with the full status after every change; returns an unsubscribe function. */
  onStatus(cb: (status: AgentStatus) => void): Unsubscribe;
  /** Called with a reason whenever the agent stops being reachable. */
  onAgentError(cb: (reason: string) => void): Unsubscribe;
  /** Any local-API request, typed by name. */
  request<K extends LocalApiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>>;
}
