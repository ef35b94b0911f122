import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSignedResponse, type ResponseParams } from '../../src/edge/idp/assertion.js';
import { parseRedirectAuthnRequest } from '../../src/edge/idp/authn-request.js';
import { loadOrCreateIdpSigningKey, type IdpSigningKey } from '../../src/edge/idp/idp-keys.js';
import type { LogLine } from '../helpers/log-capture.js';
import type { Page } from './saml-browser.js';
import { SamlCloud, TENANT } from './saml-fixture.js';

const REDIRECT = 'http://127.0.0.1:9/callback';

describe('SAML SP refuses tampered, misdirected, expired and replayed assertions, logging why', () => {
  let s: SamlCloud;
  let key: IdpSigningKey;
  let strangerKey: IdpSigningKey;
  let strangerDir: string;

  beforeAll(async () => {
    s = await new SamlCloud({ servers: {}, segments: [], rules: [] }).start();
    // The demo IdP's own key, read back from where the cloud persisted it.
    key = await loadOrCreateIdpSigningKey(join(s.dataDir, 'cloud', 'tenants', TENANT, 'idp'), 'unused');
    strangerDir = await mkdtemp(join(tmpdir(), 'zcc-stranger-idp-'));
    strangerKey = await loadOrCreateIdpSigningKey(strangerDir, 'https://stranger.example/idp');
  });

  afterAll(async () => {
    await s?.stop();
    if (strangerDir) await rm(strangerDir, { recursive: true, force: true });
  });

  /** Starts a login as an agent would and stops at the IdP: the AuthnRequest's id and the RelayState. */
  async function startLogin(): Promise<{ requestId: string; relayState: string; idpUrl: string }> {
    const u = new URL(`https://${s.cloud.enroll}/v1/login/start`);
    const params = { tenant: TENANT, redirect: REDIRECT, state: randomBytes(16).toString('base64url'), code_challenge: randomBytes(32).toString('base64url'), code_challenge_method: 'S256' };
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const page = await s.browser.get(u.toString());
    const idpUrl = new URL(page.location!);
    return { requestId: parseRedirectAuthnRequest(idpUrl.searchParams.get('SAMLRequest')!).id, relayState: idpUrl.searchParams.get('RelayState')!, idpUrl: idpUrl.toString() };
  }

  /** A response the demo IdP's key signs, for the pending login, with `overrides` applied. */
  function forged(requestId: string, overrides: Partial<ResponseParams> = {}): string {
    const r = buildSignedResponse({
      key,
      issuer: s.cloud.idp!.entityId(TENANT),
      audience: s.cloud.login.entityId(TENANT),
      acsUrl: s.cloud.login.acsUrl(TENANT),
      inResponseTo: requestId,
      nameId: 'mallory@acme.test',
      groups: ['engineering'],
      ...overrides,
    });
    return Buffer.from(r.xml).toString('base64');
  }

  function postAcs(samlResponse: string, relayState?: string): Promise<Page> {
    return s.browser.postForm(s.cloud.login.acsUrl(TENANT), { SAMLResponse: samlResponse, ...(relayState ? { RelayState: relayState } : {}) });
  }

  /** The refusal reached the agent as an OAuth error on its loopback redirect, and no code went with it. */
  function expectRefusedToAgent(page: Page, reason: string): void {
    expect(page.status).toBe(303);
    const back = new URL(page.location!);
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
    expect(back.searchParams.get('code')).toBeNull();
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('error_description')).toBe(`SAML response refused: ${reason}`);
  }

  async function refusalLogged(reason: string): Promise<LogLine> {
    return s.logs.waitFor((l) => l.component === 'saml-sp' && l.msg === `SAML response refused: ${reason}` && l.reason === reason && l.tenant === TENANT);
  }

  it('accepts the untouched forgery baseline (so each refusal below is about its one change)', async () => {
    const { requestId, relayState } = await startLogin();
    const page = await postAcs(forged(requestId), relayState);
    expect(page.status).toBe(303);
    expect(new URL(page.location!).searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a bad signature: a group value changed inside the signed assertion', async () => {
    const { relayState, idpUrl } = await startLogin();
    const loginPage = await s.browser.get(idpUrl);
    const form = /name="request" value="([^"]+)"/.exec(loginPage.body)![1]!;
    const autoPost = await s.browser.postForm(new URL('login', idpUrl.replace(/\/sso\?.*$/, '/')).toString(), { request: form, user: s.users.bob.user, password: s.users.bob.password });
    const samlResponse = /name="SAMLResponse" value="([^"]+)"/.exec(autoPost.body)![1]!;
    s.browser.seen.samlResponses.push(samlResponse);
    const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
    expect(xml).toContain('<saml:AttributeValue>sales</saml:AttributeValue>');
    const tampered = Buffer.from(xml.replace('<saml:AttributeValue>sales</saml:AttributeValue>', '<saml:AttributeValue>engineering</saml:AttributeValue>')).toString('base64');
    expectRefusedToAgent(await postAcs(tampered, relayState), 'bad-signature');
    const line = await refusalLogged('bad-signature');
    expect(line.detail).toMatch(/signature/i);
  });

  it('refuses an assertion signed by a key the IdP metadata does not list', async () => {
    const { requestId, relayState } = await startLogin();
    expectRefusedToAgent(await postAcs(forged(requestId, { key: strangerKey }), relayState), 'bad-signature');
  });

  it('refuses the wrong audience', async () => {
    const { requestId, relayState } = await startLogin();
    expectRefusedToAgent(await postAcs(forged(requestId, { audience: 'https://other-sp.example/saml' }), relayState), 'wrong-audience');
    expect((await refusalLogged('wrong-audience')).detail).toMatch(/audience mismatch/);
  });

  it('refuses an expired assertion (NotOnOrAfter in the past) and one not yet valid', async () => {
    const past = await startLogin();
    const now = Date.now();
    const expired = forged(past.requestId, { now: new Date(now - 20 * 60_000), notBefore: new Date(now - 20 * 60_000), notOnOrAfter: new Date(now - 10 * 60_000) });
    expectRefusedToAgent(await postAcs(expired, past.relayState), 'expired');
    await refusalLogged('expired');

    const future = await startLogin();
    const early = forged(future.requestId, { notBefore: new Date(now + 10 * 60_000) });
    expectRefusedToAgent(await postAcs(early, future.relayState), 'not-yet-valid');
    await refusalLogged('not-yet-valid');
  });

  it('refuses a replay: the same SAMLResponse posted twice', async () => {
    const { relayState } = await startLogin();
    const start = await startLogin();
    const response = forged(start.requestId);
    const first = await postAcs(response, start.relayState);
    expect(new URL(first.location!).searchParams.get('code')).toBeTruthy();
    // Replayed with the RelayState of another login still in progress: the assertion is spent.
    expectRefusedToAgent(await postAcs(response, relayState), 'replayed');
    expect((await postAcs(response)).status).toBe(403);
    await refusalLogged('replayed');
  });

  it('refuses an InResponseTo the SP never issued, and an unsolicited response', async () => {
    const { relayState } = await startLogin();
    expectRefusedToAgent(await postAcs(forged(`_${randomBytes(20).toString('hex')}`), relayState), 'unknown-in-response-to');
    const second = await startLogin();
    expectRefusedToAgent(await postAcs(forged('', { inResponseTo: undefined }), second.relayState), 'unknown-in-response-to');
    await refusalLogged('unknown-in-response-to');
  });

  it('refuses the wrong Recipient, the wrong Issuer and an answer to another login', async () => {
    const a = await startLogin();
    const wrongAcs = forged(a.requestId, { acsUrl: 'https://elsewhere.example/acs' });
    expectRefusedToAgent(await postAcs(wrongAcs, a.relayState), 'wrong-destination');
    const b = await startLogin();
    // Destination is outside the signature: only Recipient (signed) is wrong here.
    const recipientOnly = buildSignedResponse({ key, issuer: s.cloud.idp!.entityId(TENANT), audience: s.cloud.login.entityId(TENANT), acsUrl: 'https://elsewhere.example/acs', inResponseTo: b.requestId, nameId: 'x@acme.test', groups: [] });
    const fixedDestination = recipientOnly.xml.replace('Destination="https://elsewhere.example/acs"', `Destination="${s.cloud.login.acsUrl(TENANT)}"`);
    expectRefusedToAgent(await postAcs(Buffer.from(fixedDestination).toString('base64'), b.relayState), 'wrong-recipient');
    const c = await startLogin();
    expectRefusedToAgent(await postAcs(forged(c.requestId, { issuer: 'https://impostor.example/idp' }), c.relayState), 'wrong-issuer');

    const d = await startLogin();
    const e = await startLogin();
    const page = await postAcs(forged(d.requestId), e.relayState);
    expect(new URL(page.location!).searchParams.get('code')).toBeNull();
    await s.logs.waitFor((l) => l.reason === 'other-login');
  });

  it('never logs an assertion, SAMLResponse or password', () => {
    const all = s.logs.raw.join('\n');
    for (const secret of s.secrets()) expect(all.includes(secret)).toBe(false);
    expect(all).not.toContain('SignatureValue');
    expect(all).not.toContain('saml:Assertion');
  });
});
