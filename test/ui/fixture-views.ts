/**
 * Agent states and local-API answers for the renderer's newer views: policy (forwarding,
 * enrollment, toggles, configuration errors), Safe Mode, settings and diagnostics.
 */
import type { AgentStatus, LocalApiResponse, Setting } from '../../src/common/localapi-schema.js';
import { FIXTURE_STATUS } from './fixture-status.js';

const [acme, globex] = FIXTURE_STATUS.tenants;
if (!acme || !globex) throw new Error('fixture needs two tenants');

/** On the trusted network: Acme goes direct; Globex not enrolled; Initech locked on; a broken config file. */
export const POLICY_STATUS: AgentStatus = {
  ...FIXTURE_STATUS,
  network: { type: 'trusted', matched: ['searchDomains'], checkedAt: '2029-12-31T08:00:00Z' },
  config: {
    managedKeys: ['tenants.initech.enabled', 'ui.hiddenMenuItems'],
    lastError: { file: '/etc/zcc/agent.json', message: 'tenants.1.cloud.edge: expected host:port', at: '2029-12-31T08:15:00Z' },
  },
  tenants: [
    { ...acme, canToggle: true, enrollment: 'enrolled', forwarding: { profile: 'untrusted-only', action: 'direct', reason: 'trusted network' } },
    { ...globex, enrollment: 'not-enrolled', needsReauth: false, canToggle: true },
    {
      id: 'initech',
      name: 'Initech',
      connection: 'connected',
      user: 'peter@initech.test',
      authExpiresAt: '2030-01-01T09:00:00Z',
      needsReauth: false,
      edge: 'edge.initech.test:443',
      connectedSince: '2029-12-31T07:00:00Z',
      bytesIn: 1_048_576,
      bytesOut: 65_536,
      segments: [],
      syntheticIps: [],
      enrollment: 'enrolled',
      managed: true,
      canToggle: false,
      forwarding: { profile: 'always', action: 'tunnel', reason: 'profile always' },
    },
  ],
};

/** Disaster recovery active for Acme: Safe Mode. */
export const SAFE_MODE_STATUS: AgentStatus = {
  ...FIXTURE_STATUS,
  safeMode: true,
  tenants: [
    { ...acme, edge: 'pse-1.acme.test:443', dr: { mode: 'on', active: true, domain: 'dr.acme.test', activeSince: '2029-12-31T09:00:00Z', warnings: ['no private service edge answers for dr.acme.test on port 8443'] } },
    globex,
  ],
};

export const FIXTURES: Record<string, AgentStatus> = {
  default: FIXTURE_STATUS,
  policy: POLICY_STATUS,
  'safe-mode': SAFE_MODE_STATUS,
};

export const FIXTURE_SETTINGS: Setting[] = [
  { key: 'logging.level', value: 'info', managed: false, description: 'Agent log level.' },
  { key: 'ui.hideWindowOnLaunch', value: false, managed: false, description: 'Start in the tray without opening the window.' },
  { key: 'trustedNetwork.match', value: 'any', managed: false, description: 'Trusted when any (or all) of the configured criteria hold.' },
  { key: 'timeouts.udpIdleSeconds', value: 60, managed: false, description: 'Idle timeout of a UDP session.' },
  { key: 'ui.hiddenMenuItems', value: ['quit'], managed: true, description: 'Tray menu items not shown.' },
  { key: 'dns.domainValidation', value: true, managed: true, description: 'A short name not found within the search domains gets NXDOMAIN.' },
  { key: 'tenants.acme.forwardingProfile', value: 'untrusted-only', managed: true, description: 'Whether app traffic goes through the tunnel.' },
];

/** The key the fake agent refuses as managed although the list said otherwise (a race with the MDM). */
export const REFUSED_SETTING = 'trustedNetwork.match';

export const FIXTURE_DIAGNOSTICS: LocalApiResponse<'diagnostics'> = {
  version: '0.1.0-test',
  node: 'v22.11.0',
  platform: 'linux-x64',
  fingerprintHash: 'sha256:3f2a9c1b',
  logs: [
    { time: '2029-12-31T08:30:00.000Z', level: 'info', msg: 'Z-Tunnel up', component: 'tunnel', tenant: 'acme' },
    { time: '2029-12-31T08:31:00.000Z', level: 'warn', msg: 'sign-in expires in 25 minutes', tenant: 'globex' },
    { time: '2029-12-31T08:32:00.000Z', level: 'error', msg: 'configuration /etc/zcc/agent.json rejected: tenants.1.cloud.edge: expected host:port', component: 'config' },
  ],
};
