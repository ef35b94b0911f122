/**
 * Test-only stand-in for the preload: defines `window.zcc` over a fixed AgentStatus. Bundled to
 * a classic script and injected before app.js by test/ui/renderer.test.ts. `reauth` records the
 * call and then pushes a changed status in which the tenant is connected.
 */
import type { ZccBridge } from '../../src/common/bridge.js';
import type {
  AgentStatus,
  LocalApiRequest,
  LocalApiRequestName,
  LocalApiResponse,
} from '../../src/common/localapi-schema.js';
import { FIXTURE_STATUS } from './fixture-status.js';

export interface FakeBridgeHost {
  zcc: ZccBridge;
  __zccCalls: { name: string; args: unknown }[];
}

const host = globalThis as unknown as FakeBridgeHost;
let current: AgentStatus = structuredClone(FIXTURE_STATUS);
const listeners = new Set<(status: AgentStatus) => void>();

function push(next: AgentStatus): void {
  current = next;
  for (const cb of listeners) cb(structuredClone(next));
}

function answer(name: LocalApiRequestName, args: unknown): unknown {
  switch (name) {
    case 'status':
      return structuredClone(current);
    case 'reauth': {
      const { tenant } = args as LocalApiRequest<'reauth'>;
      setTimeout(() => {
        push({
          ...current,
          tenants: current.tenants.map((t) =>
            t.id === tenant ? { ...t, needsReauth: false, connection: 'connected', user: 'bob@globex.test' } : t,
          ),
        });
      }, 50);
      return { tenant, started: true };
    }
    case 'setTenantEnabled':
      return { ...(args as LocalApiRequest<'setTenantEnabled'>) };
    case 'exportDiagnostics':
      return { path: '/tmp/zcc-diagnostics.zip', bytes: 1234 };
  }
}

host.__zccCalls = [];
host.zcc = {
  getStatus: () => Promise.resolve(structuredClone(current)),
  onStatus(cb) {
    listeners.add(cb);
    return () => {
      listeners.delete(cb);
    };
  },
  onAgentError: () => () => undefined,
  request<K extends LocalApiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>> {
    host.__zccCalls.push({ name, args });
    return Promise.resolve(answer(name, args) as LocalApiResponse<K>);
  },
};
