import type { AgentStatus } from '../../src/common/localapi-schema.js';

/** A fixed agent state for UI tests: one healthy tenant, one that needs sign-in. */
export const FIXTURE_STATUS: AgentStatus = {
  version: '0.1.0-test',
  fingerprintHash: 'sha256:3f2a9c1b',
  safeMode: false,
  tenants: [
    {
      id: 'acme',
      name: 'Acme Corp',
      connection: 'connected',
      user: 'ada@acme.test',
      authExpiresAt: '2030-01-01T12:00:00Z',
      needsReauth: false,
      edge: 'edge-1.acme.test:443',
      connectedSince: '2029-12-31T08:30:00Z',
      bytesIn: 5_347_737,
      bytesOut: 20_480,
      segments: [
        {
          id: 'seg-intranet',
          name: 'Intranet',
          domains: ['intranet.demo.internal'],
          tcpPorts: [{ from: 80, to: 80 }],
          udpPorts: [],
        },
        {
          id: 'seg-apps',
          name: 'Demo apps',
          domains: ['*.apps.demo.internal', 'echo.demo.internal'],
          tcpPorts: [
            { from: 7, to: 7 },
            { from: 8080, to: 8090 },
          ],
          udpPorts: [{ from: 53, to: 53 }],
        },
      ],
      syntheticIps: [
        { fqdn: 'intranet.demo.internal', ip: '100.64.0.1' },
        { fqdn: 'wiki.apps.demo.internal', ip: '100.64.0.2' },
        { fqdn: 'echo.demo.internal', ip: '100.64.0.3' },
      ],
    },
    {
      id: 'globex',
      name: 'Globex',
      connection: 'disconnected',
      needsReauth: true,
      bytesIn: 0,
      bytesOut: 0,
      segments: [],
      syntheticIps: [],
    },
  ],
};
