import { X509Certificate } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reauthenticate } from '../../src/agent/identity/login-enroll.js';
import { DialError } from '../../src/agent/intercept/dialer.js';
import { parseIdpMetadata } from '../../src/edge/enroll/saml-metadata.js';
import { identityFromCertificate } from '../../src/protocol/pki.js';
import { echoServer, type TestServer } from '../helpers/servers.js';
import { parseForm } from './saml-browser.js';
import { echo, FP, SamlCloud, TENANT } from './saml-fixture.js';

function startUrl(s: SamlCloud, params: Record<string, string>): string {
  const u = new URL(`https://${s.cloud.enroll}/v1/login/start`);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

describe('SAML login through the demo IdP (RFC 8252 loopback, PKCE), enrollment and policy by group', () => {
  let app: TestServer;
  let s: SamlCloud;

  beforeAll(async () => {
    app = await echoServer();
    s = await new SamlCloud({
      servers: { 'eng.acme.test:7': `127.0.0.1:${app.port}` },
      segments: [{ id: 'eng', name: 'Engineering tools', domains: ['eng.acme.test'], tcpPorts: [{ from: 7, to: 7 }] }],
      rules: [{ id: 'eng-only', name: 'engineering may use eng tools', action: 'allow', groups: ['engineering'], segments: ['eng'] }],
    }).start();
  });

  afterAll(async () => {
    await s?.stop();
    await app?.close();
  });

  it('publishes IdP metadata the SP is configured from, with the signing key kept 0600 under dataDir', async () => {
    const idpEntity = s.cloud.idp!.entityId(TENANT);
    const page = await s.browser.get(`${idpEntity}/metadata`);
    expect(page.status).toBe(200);
    const meta = parseIdpMetadata(page.body);
    expect(meta.entityId).toBe(idpEntity);
    expect(meta.ssoUrl).toBe(`${idpEntity}/sso`);
    expect(new X509Certificate(meta.signingCertsPem[0]!).publicKey.asymmetricKeyType).toBe('rsa');
    const keyFile = await stat(join(s.dataDir, 'cloud', 'tenants', TENANT, 'idp', 'signing.pem'));
    expect(keyFile.mode & 0o777).toBe(0o600);
    const sp = await s.browser.get(s.cloud.login.entityId(TENANT));
    expect(sp.body).toContain(s.cloud.login.acsUrl(TENANT));
  });

  it('enrolls alice through the browser login: the certificate names the IdP user, the auth record her groups', async () => {
    const id = await s.enroll(s.users.alice, 'alice-laptop');
    const identity = identityFromCertificate(id.certPem);
    expect(identity).toMatchObject({ kind: 'client', tenant: TENANT, user: 'alice@acme.test', device: 'alice-laptop', fingerprint: FP });
    expect(s.cloud.auth.get(TENANT, 'alice-laptop')).toMatchObject({ user: 'alice@acme.test', groups: ['engineering', 'staff'] });
    expect(s.logs.find((l) => l.msg === 'agent enrolled' && l.via === 'login' && l.user === 'alice@acme.test')).toBeDefined();

    // The group rule lets her through a real microtunnel…
    const tunnel = await s.tunnel(id, 'alice-agent');
    expect(tunnel.status.session?.user).toBe('alice@acme.test');
    const stream = await tunnel.dial({ proto: 'tcp', host: 'eng.acme.test', port: 7 });
    expect(await echo(stream, 'hello from engineering')).toBe('hello from engineering');
    stream.end();
  });

  it('denies bob, who is not in the group, on the same app', async () => {
    const id = await s.enroll(s.users.bob, 'bob-laptop');
    expect(identityFromCertificate(id.certPem)).toMatchObject({ user: 'bob@acme.test' });
    expect(s.cloud.auth.get(TENANT, 'bob-laptop')?.groups).toEqual(['sales']);
    const tunnel = await s.tunnel(id, 'bob-agent');
    const err = await tunnel.dial({ proto: 'tcp', host: 'eng.acme.test', port: 7 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DialError);
    expect((err as DialError).reason).toBe('denied');
    await s.logs.waitFor((l) => l.msg === 'microtunnel denied by policy' && l.peer === 'agent bob@acme.test@bob-laptop');
  });

  it('re-authenticates an enrolled device with a fresh ticket; a ticket works once and only for its own user', async () => {
    const alice = await s.enroll(s.users.alice, 'alice-desktop');
    const before = s.cloud.auth.get(TENANT, 'alice-desktop')!.expiresAt;
    await s.reauth(s.users.alice, alice);
    expect(s.cloud.auth.get(TENANT, 'alice-desktop')!.expiresAt).toBeGreaterThanOrEqual(before);

    const bobTicket = await s.login(s.users.bob);
    const wrongUser = await reauthenticate({ ...s.endpoint, identity: alice, ticket: bobTicket.ticket, fingerprint: FP }).catch((e: unknown) => e);
    expect(String(wrongUser)).toMatch(/403.*bob@acme.test is not the certificate's user alice@acme.test/);

    const aliceTicket = await s.login(s.users.alice);
    await reauthenticate({ ...s.endpoint, identity: alice, ticket: aliceTicket.ticket, fingerprint: FP });
    const again = await reauthenticate({ ...s.endpoint, identity: alice, ticket: aliceTicket.ticket, fingerprint: FP }).catch((e: unknown) => e);
    expect(String(again)).toMatch(/403.*ticket unknown, used or expired/);
  });

  it('refuses a wrong password at the IdP and says so on the form, without logging the password', async () => {
    const start = startUrl(s, { tenant: TENANT, redirect: 'http://127.0.0.1:9/callback', state: 'state-0123456789abcdef', code_challenge: 'A'.repeat(43), code_challenge_method: 'S256' });
    const idp = await s.browser.get((await s.browser.get(start)).location!);
    const form = parseForm(idp);
    const attempt = await s.browser.postForm(form.action, { ...form.fields, user: 'alice@acme.test', password: 'not-her-password-123' });
    expect(attempt.status).toBe(401);
    expect(attempt.body).toContain('Wrong user or password.');
    await s.logs.waitFor((l) => l.msg === 'IdP: wrong user or password' && l.user === 'alice@acme.test');
    expect(s.logs.raw.join('\n')).not.toContain('not-her-password-123');
  });

  it('refuses a redirect off the loopback interface, a missing PKCE challenge and an unknown tenant', async () => {
    const base = { tenant: TENANT, redirect: 'http://127.0.0.1:9/callback', state: 'state-0123456789abcdef', code_challenge: 'A'.repeat(43), code_challenge_method: 'S256' };
    for (const [params, why] of [
      [{ ...base, redirect: 'http://evil.example:80/callback' }, /loopback IP literal/],
      [{ ...base, redirect: 'http://localhost:9/callback' }, /loopback IP literal/],
      [{ ...base, code_challenge: '' }, /PKCE S256/],
      [{ ...base, code_challenge_method: 'plain' }, /must be S256/],
      [{ ...base, tenant: 'nobody' }, /has no SAML login/],
    ] as const) {
      const page = await s.browser.get(startUrl(s, params));
      expect(page.status).toBeGreaterThanOrEqual(400);
      expect(page.body).toMatch(why);
    }
  });

  it('burns a code whose PKCE verifier is wrong', async () => {
    const redirect = 'http://127.0.0.1:9/callback';
    const start = startUrl(s, { tenant: TENANT, redirect, state: 'state-0123456789abcdef', code_challenge: 'B'.repeat(43), code_challenge_method: 'S256' });
    const autoPost = await s.browser.signInAtIdp(start, s.users.alice.user, s.users.alice.password);
    const acs = await s.browser.postForm(autoPost.action, autoPost.fields);
    const code = new URL(acs.location!).searchParams.get('code')!;
    s.browser.seen.codes.push(code);
    const { postLoginApi } = await import('../../src/agent/identity/login-api.js');
    const { LoginTicketResponse } = await import('../../src/protocol/enroll-api.js');
    const exchange = (): Promise<unknown> => postLoginApi(s.endpoint, '/v1/login/token', { code, codeVerifier: 'v'.repeat(43), redirect }, LoginTicketResponse).catch((e: unknown) => e);
    expect(String(await exchange())).toMatch(/code_verifier does not match/);
    expect(String(await exchange())).toMatch(/code unknown, used or expired/);
  });

  it('never logs a password, SAMLResponse, assertion, code or ticket', () => {
    const secrets = s.secrets();
    expect(secrets.length).toBeGreaterThan(10);
    const all = s.logs.raw.join('\n');
    for (const secret of secrets) expect(all.includes(secret), `a secret of ${secret.length} characters is in the logs`).toBe(false);
  });
});
