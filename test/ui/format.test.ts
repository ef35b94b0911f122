/** Pure display helpers of the renderer. */
import { describe, expect, it } from 'vitest';
import {
  canReauth,
  domainMatches,
  errorMessage,
  formatBytes,
  formatSegmentPorts,
  syntheticIpsBySegment,
} from '../../src/renderer/format.js';
import { FIXTURE_STATUS } from './fixture-status.js';

const [acme, globex] = FIXTURE_STATUS.tenants;
if (!acme || !globex) throw new Error('fixture needs two tenants');

describe('format', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [5_347_737, '5.1 MiB'],
    [150 * 1024 ** 3, '150 GiB'],
  ])('formatBytes(%i) = %s', (n, s) => expect(formatBytes(n)).toBe(s));

  it.each([
    ['intranet.demo.internal', 'intranet.demo.internal', true],
    ['intranet.demo.internal', 'INTRANET.demo.internal.', true],
    ['*.apps.demo.internal', 'wiki.apps.demo.internal', true],
    ['*.apps.demo.internal', 'a.b.apps.demo.internal', true],
    ['*.apps.demo.internal', 'apps.demo.internal', false],
    ['*.apps.demo.internal', 'evilapps.demo.internal', false],
    ['intranet.demo.internal', 'x.intranet.demo.internal', false],
  ])('domainMatches(%s, %s) = %s', (p, f, m) => expect(domainMatches(p, f)).toBe(m));

  it('groups synthetic IPs under their segment and keeps strays', () => {
    const { bySegment, unmatched } = syntheticIpsBySegment({
      ...acme,
      syntheticIps: [...acme.syntheticIps, { fqdn: 'stray.example', ip: '100.64.0.9' }],
    });
    expect(bySegment.get('seg-intranet')?.map((i) => i.ip)).toEqual(['100.64.0.1']);
    expect(bySegment.get('seg-apps')?.map((i) => i.ip)).toEqual(['100.64.0.2', '100.64.0.3']);
    expect(unmatched.map((i) => i.fqdn)).toEqual(['stray.example']);
  });

  it('formats ports and reauth availability', () => {
    expect(acme.segments.map(formatSegmentPorts)).toEqual(['TCP 80', 'TCP 7, 8080–8090 · UDP 53']);
    expect([canReauth(acme), canReauth(globex), canReauth({ ...acme, connection: 'connecting' })]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('strips Electron’s IPC error wrapper', () => {
    expect(errorMessage(new Error("Error invoking remote method 'zcc:request': Error: tenant unknown"))).toBe(
      'tenant unknown',
    );
    expect(errorMessage('plain')).toBe('plain');
  });
});
