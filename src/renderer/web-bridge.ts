/**
 * `window.zcc` for the renderer served on loopback by `zcc demo --ui` (no Electron): the same
 * typed bridge as the preload, over same-origin HTTP to the page's own server. The API base
 * carries a random capability token taken from the page URL, so other local web pages cannot
 * drive it.
 */
import type { UiRequestName, ZccBridge } from '../common/bridge.js';
import type { AgentStatus, LocalApiRequest, LocalApiResponse } from '../common/localapi-schema.js';

const base = location.pathname.replace(/\/(index\.html)?$/, '').replace(/\/ui\/?$/, '') + '/api';

async function post(name: string, args: unknown): Promise<unknown> {
  const res = await fetch(`${base}/request/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(args) });
  const body = (await res.json()) as unknown;
  if (!res.ok) throw new Error((body as { error?: string }).error ?? `request ${name} failed (${res.status})`);
  return body;
}

const statusListeners = new Set<(s: AgentStatus) => void>();
const errorListeners = new Set<(reason: string) => void>();
let source: EventSource | null = null;

function follow(): void {
  if (source) return;
  source = new EventSource(`${base}/watch`);
  source.onmessage = (e: MessageEvent<string>) => {
    const event = JSON.parse(e.data) as { status: AgentStatus };
    for (const cb of statusListeners) cb(event.status);
  };
  source.onerror = () => {
    for (const cb of errorListeners) cb('lost the connection to the agent; retrying');
  };
}

const bridge: ZccBridge = {
  getStatus: () => post('status', {}) as Promise<AgentStatus>,
  onStatus(cb) {
    statusListeners.add(cb);
    follow();
    return () => statusListeners.delete(cb);
  },
  onAgentError(cb) {
    errorListeners.add(cb);
    return () => errorListeners.delete(cb);
  },
  request<K extends UiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>> {
    return post(name, args) as Promise<LocalApiResponse<K>>;
  },
  /** The sign-in page opens in a new tab of this browser; this page never loads it. */
  openLoginUrl(url: string): Promise<void> {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      return Promise.reject(new Error('not a sign-in URL'));
    }
    if (protocol !== 'https:' && protocol !== 'http:') return Promise.reject(new Error('only http(s) sign-in URLs are opened'));
    window.open(url, '_blank', 'noopener,noreferrer');
    return Promise.resolve();
  },
};

Object.defineProperty(window, 'zcc', { value: Object.freeze(bridge), writable: false, configurable: false });
