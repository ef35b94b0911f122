/** Pure helpers behind the newer views: badges, forwarding line, time left, settings, sign-in completion. */
import { describe, expect, it } from 'vitest';
import type { Setting, TenantStatus } from '../../src/common/localapi-schema.js';
import { canReauth, formatSettingValue, formatTimeLeft, forwardingLine, tenantBadge } from '../../src/renderer/format.js';
import { settingEditor } from '../../src/renderer/setting-choices.js';
import { signInCompleted, signInStart } from '../../src/renderer/sign-in.js';

const base: TenantStatus = { id: 'a', name: 'A', connection: 'connected', needsReauth: false, bytesIn: 0, bytesOut: 0, segments: [], syntheticIps: [], authExpiresAt: '2030-01-01T00:00:00Z' };
const T = Date.parse('2029-12-31T20:00:00Z');

describe('tenant badge and re-auth offer', () => {
  it.each([
    ['connected', base, 'Connected', 'connected'],
    ['not enrolled', { ...base, connection: 'disconnected', enrollment: 'not-enrolled' }, 'Not signed in', 'disconnected'],
    ['DR active', { ...base, dr: { mode: 'on', active: true, domain: 'd', warnings: [] } }, 'Safe mode', 'safe-mode'],
    ['error beats DR', { ...base, connection: 'error', dr: { mode: 'on', active: true, domain: 'd', warnings: [] } }, 'Error', 'error'],
  ] as [string, TenantStatus, string, string][])('%s', (_n, t, label, state) => {
    expect(tenantBadge(t)).toEqual({ label, state });
  });

  it('offers a sign-in to a tenant not enrolled, a refresh to a connected one, nothing while it is down', () => {
    expect(canReauth({ ...base, connection: 'disconnected', enrollment: 'not-enrolled' })).toBe(true);
    expect(canReauth(base)).toBe(true);
    expect(canReauth({ ...base, connection: 'safe-mode' })).toBe(false);
  });
});

describe('forwardingLine', () => {
  const trusted = { type: 'trusted' as const, matched: ['searchDomains'], checkedAt: '2030-01-01T00:00:00Z' };
  it('says what the profile decides on this network', () => {
    expect(forwardingLine({ ...base, forwarding: { profile: 'untrusted-only', action: 'direct', reason: 'r' } }, trusted)).toBe('Trusted network: tunnel off by profile (untrusted-only)');
    expect(forwardingLine({ ...base, forwarding: { profile: 'always', action: 'tunnel', reason: 'r' } }, { ...trusted, type: 'untrusted' })).toBe('Untrusted network: apps go through the tunnel');
    expect(forwardingLine({ ...base, forwarding: { profile: 'never', action: 'direct', reason: 'r' } }, undefined)).toBe('This network: tunnel off by profile (never)');
    expect(forwardingLine(base, trusted)).toBeUndefined();
  });
});

describe('formatTimeLeft / formatSettingValue', () => {
  it.each([
    ['2029-12-31T20:00:30Z', 'in less than a minute'],
    ['2029-12-31T20:45:00Z', 'in 45 min'],
    ['2029-12-31T23:20:00Z', 'in 3 h 20 min'],
    ['2030-01-01T00:00:00Z', 'in 4 h'],
    ['2030-01-06T20:00:00Z', 'in 6 days'],
    ['2029-12-31T19:59:00Z', 'expired'],
  ])('%s → %s', (iso, text) => {
    expect(formatTimeLeft(iso, T)).toBe(text);
  });

  it('shows values as text', () => {
    expect(formatSettingValue(true)).toBe('on');
    expect(formatSettingValue(['quit', 'open'])).toBe('quit, open');
    expect(formatSettingValue([])).toBe('none');
    expect(formatSettingValue(null)).toBe('not set');
    expect(formatSettingValue({ a: 1 })).toBe('{"a":1}');
    expect(formatSettingValue(60)).toBe('60');
  });
});

describe('settingEditor', () => {
  const s = (key: string, value: unknown, managed = false): Setting => ({ key, value, managed });
  it('locks managed settings and edits only booleans and known enumerations', () => {
    expect(settingEditor(s('dns.domainValidation', true, true))).toEqual({ kind: 'locked' });
    expect(settingEditor(s('ui.hideWindowOnLaunch', false))).toEqual({ kind: 'boolean' });
    expect(settingEditor(s('logging.level', 'info'))).toMatchObject({ kind: 'choice', choices: expect.arrayContaining(['debug', 'info']) });
    expect(settingEditor(s('tenants.acme.forwardingProfile', 'always'))).toMatchObject({ kind: 'choice' });
    expect(settingEditor(s('logging.level', 'verbose'))).toEqual({ kind: 'read-only' });
    expect(settingEditor(s('timeouts.udpIdleSeconds', 60))).toEqual({ kind: 'read-only' });
    expect(settingEditor(s('ui.hiddenMenuItems', ['quit']))).toEqual({ kind: 'read-only' });
  });
});

describe('signInCompleted', () => {
  it('a required sign-in is done when the agent no longer requires it', () => {
    const start = signInStart({ ...base, needsReauth: true });
    expect(signInCompleted(start, { ...base, needsReauth: true })).toBe(false);
    expect(signInCompleted(start, base)).toBe(true);
  });
  it('a voluntary one is done when the expiry moved', () => {
    const start = signInStart(base);
    expect(signInCompleted(start, base)).toBe(false);
    expect(signInCompleted(start, { ...base, authExpiresAt: '2030-01-08T00:00:00Z' })).toBe(true);
  });
  it('enrolling is done when the tenant is enrolled and needs nothing', () => {
    const t: TenantStatus = { ...base, connection: 'disconnected', enrollment: 'not-enrolled', authExpiresAt: undefined };
    const start = signInStart(t);
    expect(signInCompleted(start, t)).toBe(false);
    expect(signInCompleted(start, { ...base, enrollment: 'enrolled' })).toBe(true);
  });
});
