/** The shared local-API schema: accepts the fixture, refuses malformed input. */
import { describe, expect, it } from 'vitest';
import {
  AgentStatusSchema,
  LOCALAPI_REQUEST_NAMES,
  WatchEventSchema,
  isLocalApiRequestName,
  localApiPath,
  parseLocalApiRequest,
  parseLocalApiResponse,
} from '../../src/common/localapi-schema.js';
import { FIXTURE_STATUS } from '../ui/fixture-status.js';

describe('localapi-schema', () => {
  it('accepts a full status and both watch events', () => {
    expect(AgentStatusSchema.parse(FIXTURE_STATUS)).toEqual(FIXTURE_STATUS);
    for (const type of ['snapshot', 'changed'] as const) {
      expect(WatchEventSchema.parse({ type, status: FIXTURE_STATUS }).type).toBe(type);
    }
    expect(() => WatchEventSchema.parse({ type: 'other', status: FIXTURE_STATUS })).toThrow();
  });

  const tenant = FIXTURE_STATUS.tenants[0];
  it.each([
    ['unknown connection state', { connection: 'online' }],
    ['negative byte count', { bytesIn: -1 }],
    ['non-ISO expiry', { authExpiresAt: 'tomorrow' }],
    ['inverted port range', { segments: [{ id: 's', name: 's', domains: [], tcpPorts: [{ from: 9, to: 1 }], udpPorts: [] }] }],
    ['port out of range', { segments: [{ id: 's', name: 's', domains: [], tcpPorts: [{ from: 1, to: 70000 }], udpPorts: [] }] }],
    ['synthetic IP that is not an IP', { syntheticIps: [{ fqdn: 'a.test', ip: 'a.test' }] }],
  ])('refuses a tenant with %s', (_name, patch) => {
    expect(() => AgentStatusSchema.parse({ ...FIXTURE_STATUS, tenants: [{ ...tenant, ...patch }] })).toThrow();
  });

  it('names, paths and argument validation', () => {
    expect(LOCALAPI_REQUEST_NAMES).toEqual(['status', 'reauth', 'setTenantEnabled', 'addTenant', 'removeTenant', 'settings', 'setSetting', 'diagnostics', 'exportDiagnostics']);
    expect(isLocalApiRequestName('reauth')).toBe(true);
    expect(isLocalApiRequestName('toString')).toBe(false);
    expect(isLocalApiRequestName(42)).toBe(false);
    expect(localApiPath('setTenantEnabled')).toBe('/localapi/v1/setTenantEnabled');
    expect(parseLocalApiRequest('setTenantEnabled', { tenant: 'a', enabled: true })).toEqual({ tenant: 'a', enabled: true });
    expect(() => parseLocalApiRequest('status', { sneaky: 1 })).toThrow();
    expect(() => parseLocalApiRequest('reauth', { tenant: '' })).toThrow();
    expect(() => parseLocalApiResponse('reauth', { tenant: 'a', started: true, loginUrl: 'not a url' })).toThrow();
  });
});
