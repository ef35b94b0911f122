import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reauthWarningAt, REAUTH_WARN_MAX_MS } from '../../src/agent/identity/login-expiry.js';
import { DialError } from '../../src/agent/intercept/dialer.js';
import type { TunnelStatus } from '../../src/agent/tunnel/tunnel-client.js';
import { needsReauth } from '../../src/agent/status.js';
import { waitUntil } from '../helpers/log-capture.js';
import { echoServer, type TestServer } from '../helpers/servers.js';
import { echo, engEchoCloud, type SamlCloud, TENANT } from './saml-fixture.js';

const AUTH_TIMEOUT_S = 4;

describe('auth expiry is a pure function of (authExpiresAt, now)', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');

  it('needsReauth flips exactly at the expiry', () => {
    expect(needsReauth(undefined, t0)).toBe(false);
    expect(needsReauth(new Date(t0 + 1).toISOString(), t0)).toBe(false);
    expect(needsReauth(new Date(t0).toISOString(), t0)).toBe(true);
    expect(needsReauth(new Date(t0 - 1).toISOString(), t0)).toBe(true);
  });

  it('warns an hour ahead of a 7-day lifetime and 10 % ahead of a short one', () => {
    const week = 7 * 86_400_000;
    expect(reauthWarningAt(t0 + week, t0)).toBe(t0 + week - REAUTH_WARN_MAX_MS);
    expect(reauthWarningAt(t0 + 3_000, t0)).toBe(t0 + 2_700);
    expect(reauthWarningAt(t0, t0 + 5)).toBe(t0);
  });
});

describe(`auth timeout (${AUTH_TIMEOUT_S} s from config): new microtunnels need a new login, open ones keep working`, () => {
  let app: TestServer;
  let s: SamlCloud;

  beforeAll(async () => {
    app = await echoServer();
    s = await engEchoCloud(app.port, AUTH_TIMEOUT_S).start();
  });

  afterAll(async () => {
    await s?.stop();
    await app?.close();
  });

  it('keeps an established microtunnel, refuses a new one with needs-reauth, and recovers after re-authentication', async () => {
    const identity = await s.enroll(s.users.alice, 'alice-laptop');
    const tunnel = await s.tunnel(identity, 'agent');
    const statuses: TunnelStatus[] = [];
    tunnel.on('status', (st) => statuses.push(st));

    const expiresAt = await waitUntil(() => tunnel.status.session?.authExpiresAt, 5_000, 'session-info with authExpiresAt');
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(AUTH_TIMEOUT_S * 1000);
    expect(tunnel.status.needsReauth).toBe(false);
    const open = await tunnel.dial({ proto: 'tcp', host: 'eng.acme.test', port: 7 });
    expect(await echo(open, 'before expiry')).toBe('before expiry');

    // The agent warns ahead of the expiry, naming it, then says it has passed.
    const warning = await s.logs.waitFor((l) => l.proc === 'agent' && l.level === 40 && String(l.msg).startsWith('authentication expires at'), 10_000);
    expect(warning.authExpiresAt).toBe(expiresAt);
    expect(warning.time as number).toBeLessThan(Date.parse(expiresAt));
    await s.logs.waitFor((l) => l.proc === 'agent' && String(l.msg).startsWith(`authentication expired at ${expiresAt}`), 10_000);
    // Status watchers are told when it flips, without polling.
    await waitUntil(() => statuses.some((st) => st.needsReauth), 5_000, 'a status event with needsReauth');
    expect(tunnel.status.needsReauth).toBe(true);
    expect(tunnel.status.state).toBe('connected');

    // Established: still carries data. New: refused with the reason the user can act on.
    expect(await echo(open, 'after expiry, same microtunnel')).toBe('after expiry, same microtunnel');
    const refused = await tunnel.dial({ proto: 'tcp', host: 'eng.acme.test', port: 7 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DialError);
    expect((refused as DialError).reason).toBe('needs-reauth');

    // Log in again (same browser flow) and re-authenticate the enrolled device over mTLS.
    const renewed = await s.reauth(s.users.alice, identity, tunnel);
    expect(Date.parse(renewed)).toBeGreaterThan(Date.parse(expiresAt));
    expect(tunnel.status.session?.authExpiresAt).toBe(renewed);
    expect(tunnel.status.needsReauth).toBe(false);
    expect(s.cloud.auth.get(TENANT, 'alice-laptop')?.groups).toEqual(['engineering', 'staff']);
    const fresh = await tunnel.dial({ proto: 'tcp', host: 'eng.acme.test', port: 7 });
    expect(await echo(fresh, 'after re-authentication')).toBe('after re-authentication');
    expect(await echo(open, 'the old one too')).toBe('the old one too');
    fresh.end();
    open.end();
  });

  it('never logs a password, SAMLResponse, assertion, code or ticket', () => {
    const all = s.logs.raw.join('\n');
    for (const secret of s.secrets()) expect(all.includes(secret)).toBe(false);
  });
});
