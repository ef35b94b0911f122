/**
 * Test-only stand-in for the preload: defines `window.zcc` over fixed agent states. Bundled to
 * a classic script and injected before app.js by the renderer tests. The page URL picks the
 * state (`?fixture=policy`, see fixture-views.ts). Every request is recorded in `__zccCalls`;
 * `__zccPush(name)` pushes another fixture as if the agent changed, and
 * `__zccCompleteSignIn(tenant)` plays the agent finishing a browser sign-in.
 */
import type { UiRequestName, ZccBridge } from '../../src/common/bridge.js';
import type { AgentStatus, LocalApiRequest, LocalApiResponse, Setting } from '../../src/common/localapi-schema.js';
import { FIXTURES, FIXTURE_DIAGNOSTICS, FIXTURE_SETTINGS, REFUSED_SETTING } from './fixture-views.js';

export interface FakeBridgeHost {
  zcc: ZccBridge;
  __zccCalls: { name: string; args: unknown }[];
  __zccOpened: string[];
  __zccPush(fixture: string): void;
  __zccCompleteSignIn(tenant: string): void;
}

const host = globalThis as unknown as FakeBridgeHost;
const search = (globalThis as unknown as { location?: { search: string } }).location?.search ?? '';
const fixture = new URLSearchParams(search).get('fixture') ?? 'default';
let current: AgentStatus = structuredClone(FIXTURES[fixture] ?? FIXTURES.default!);
let settings: Setting[] = structuredClone(FIXTURE_SETTINGS);
const listeners = new Set<(status: AgentStatus) => void>();

function push(next: AgentStatus): void {
  current = next;
  for (const cb of listeners) cb(structuredClone(next));
}

function answer(name: UiRequestName, args: unknown): unknown {
  switch (name) {
    case 'status':
      return structuredClone(current);
    case 'reauth': {
      const { tenant } = args as LocalApiRequest<'reauth'>;
      return { tenant, started: true, loginUrl: `https://idp.example.test/sso?tenant=${tenant}` };
    }
    case 'setTenantEnabled': {
      const { tenant, enabled } = args as LocalApiRequest<'setTenantEnabled'>;
      setTimeout(() => push({ ...current, tenants: current.tenants.map((t) => (t.id === tenant ? { ...t, connection: enabled ? 'connected' : 'disconnected' } : t)) }), 50);
      return { tenant, enabled };
    }
    case 'settings':
      return { settings: structuredClone(settings) };
    case 'setSetting': {
      const { key, value } = args as LocalApiRequest<'setSetting'>;
      const s = settings.find((x) => x.key === key);
      if (!s || s.managed || key === REFUSED_SETTING) throw new Error(`${key} is managed by your administrator`);
      settings = settings.map((x) => (x.key === key ? { ...x, value } : x));
      return { key, value };
    }
    case 'diagnostics':
      return structuredClone(FIXTURE_DIAGNOSTICS);
    case 'exportDiagnostics':
      return { path: '/tmp/zcc-diagnostics.zip', bytes: 1234 };
  }
}

host.__zccCalls = [];
host.__zccOpened = [];
host.__zccPush = (name) => push(structuredClone(FIXTURES[name]!));
host.__zccCompleteSignIn = (tenant) =>
  push({
    ...current,
    tenants: current.tenants.map((t) =>
      t.id === tenant
        ? { ...t, needsReauth: false, enrollment: 'enrolled', connection: 'connected', user: t.user ?? 'bob@globex.test', authExpiresAt: '2030-02-01T12:00:00Z' }
        : t,
    ),
  });
host.zcc = {
  getStatus: () => Promise.resolve(structuredClone(current)),
  onStatus(cb) {
    listeners.add(cb);
    return () => {
      listeners.delete(cb);
    };
  },
  onAgentError: () => () => undefined,
  request<K extends UiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>> {
    host.__zccCalls.push({ name, args });
    try {
      return Promise.resolve(answer(name, args) as LocalApiResponse<K>);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  },
  openLoginUrl(url) {
    host.__zccOpened.push(url);
    return Promise.resolve();
  },
};
