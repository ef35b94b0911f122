import { SAML, SamlStatusError, ValidateInResponseTo, type CacheItem, type CacheProvider, type Profile, type SamlConfig } from '@node-saml/node-saml';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import type { IdpMetadata } from './saml-metadata.js';
import { children, descendants, parseXml, SAML_NS, SAMLP_NS, textOf } from './saml-xml.js';

/** Why a SAML response was refused; logged with every refusal. */
export type SamlRefusal =
  | 'malformed'
  | 'bad-signature'
  | 'wrong-audience'
  | 'wrong-issuer'
  | 'wrong-recipient'
  | 'wrong-destination'
  | 'expired'
  | 'not-yet-valid'
  | 'unknown-in-response-to'
  | 'replayed'
  | 'no-subject'
  | 'idp-error';

export type SamlVerdict =
  | { ok: true; user: string; groups: string[]; inResponseTo: string }
  | { ok: false; reason: SamlRefusal; detail: string };

export interface SamlSpOptions {
  tenant: string;
  /** This SP's entity id: the audience assertions must name. */
  entityId: string;
  /** Where the IdP posts responses; assertions must name it as Recipient. */
  acsUrl: string;
  idp: IdpMetadata;
  /** Name of the attribute carrying the user's groups. */
  groupsAttribute: string;
  log: Logger;
  clockSkewMs?: number;
  /** How long an AuthnRequest we issued may be answered. */
  requestTtlMs?: number;
}

const DEFAULT_SKEW_MS = 30_000;
const DEFAULT_REQUEST_TTL_MS = 10 * 60_000;
/** Replay memory for assertions that do not say when they expire (ours always do). */
const MAX_REPLAY_WINDOW_MS = 60 * 60_000;

/**
 * The cloud's SAML service provider for one tenant, configured from the IdP's metadata only.
 * @node-saml/node-saml checks the signature (only what it covers is read), audience, validity
 * window and InResponseTo (ids we issued, each answered once); on top of it this class checks
 * what node-saml leaves to its caller: Issuer, Recipient, Destination and assertion replay.
 */
export class SamlServiceProvider {
  private readonly requests = new ExpiringCache();
  /** Assertion ids accepted, until their NotOnOrAfter: a captured response works at most once. */
  private readonly seen = new Map<string, number>();
  private readonly validator: SAML;

  constructor(private readonly opts: SamlSpOptions) {
    this.requests.ttlMs = opts.requestTtlMs ?? DEFAULT_REQUEST_TTL_MS;
    this.validator = new SAML(this.config(() => randomId()));
  }

  /** The HTTP-Redirect URL sending the browser to the IdP, and the AuthnRequest id in it. */
  async authorizeUrl(relayState: string): Promise<{ url: string; requestId: string }> {
    const requestId = randomId();
    // One SAML object per request so the id is known here; they share the request cache.
    const url = await new SAML(this.config(() => requestId)).getAuthorizeUrlAsync(relayState, undefined, {});
    return { url, requestId };
  }

  /** SP metadata for registering this tenant with an external IdP. */
  metadataXml(): string {
    return this.validator.generateServiceProviderMetadata(null, null);
  }

  /** Validates a base64 SAMLResponse from the POST binding; refusals are logged here. */
  async validate(samlResponse: string): Promise<SamlVerdict> {
    const verdict = await this.check(samlResponse);
    if (!verdict.ok) {
      // The reason and node-saml's message only: never the response or assertion itself.
      this.opts.log.warn({ tenant: this.opts.tenant, reason: verdict.reason, detail: verdict.detail }, `SAML response refused: ${verdict.reason}`);
    } else {
      this.opts.log.info({ tenant: this.opts.tenant, user: verdict.user, groups: verdict.groups }, 'SAML assertion accepted');
    }
    return verdict;
  }

  private async check(samlResponse: string): Promise<SamlVerdict> {
    const now = Date.now();
    for (const [id, until] of this.seen) if (until <= now) this.seen.delete(id);

    // A first, unauthenticated look, used only to refuse: replays and misdirected responses.
    let unsignedAssertionId: string;
    try {
      const root = parseXml(Buffer.from(samlResponse, 'base64').toString('utf8'), 'SAMLResponse');
      if (root.namespaceURI !== SAMLP_NS || root.localName !== 'Response') return refuse('malformed', 'not a SAML 2.0 Response');
      const destination = root.getAttribute('Destination');
      if (destination && destination !== this.opts.acsUrl) return refuse('wrong-destination', `Destination is not this tenant's ACS URL`);
      unsignedAssertionId = children(root, SAML_NS, 'Assertion')[0]?.getAttribute('ID') ?? '';
    } catch (err) {
      return refuse('malformed', firstLine(err));
    }
    if (this.seen.has(unsignedAssertionId)) return refuse('replayed', 'this assertion was already used');

    let profile: Profile | null;
    try {
      ({ profile } = await this.validator.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (err) {
      return refuse(classify(err), firstLine(err));
    }
    if (!profile) return refuse('malformed', 'no assertion in the response');

    // Everything below reads the assertion node-saml verified, never the document around it.
    const assertion = parseXml(profile.getAssertionXml?.() ?? '', 'assertion');
    const issuer = textOf(children(assertion, SAML_NS, 'Issuer')[0]);
    if (issuer !== this.opts.idp.entityId) return refuse('wrong-issuer', 'Issuer is not the configured IdP');
    const confirmations = descendants(assertion, SAML_NS, 'SubjectConfirmationData');
    if (!confirmations.some((c) => c.getAttribute('Recipient') === this.opts.acsUrl)) return refuse('wrong-recipient', `no SubjectConfirmationData names this tenant's ACS URL as Recipient`);
    const assertionId = assertion.getAttribute('ID') ?? '';
    if (!assertionId || this.seen.has(assertionId)) return refuse('replayed', 'this assertion was already used');
    const user = profile.nameID?.trim();
    if (!user) return refuse('no-subject', 'assertion has no NameID');
    const inResponseTo = typeof profile.inResponseTo === 'string' ? profile.inResponseTo : '';
    if (!inResponseTo) return refuse('unknown-in-response-to', 'InResponseTo is missing');

    const notOnOrAfter = Date.parse(children(assertion, SAML_NS, 'Conditions')[0]?.getAttribute('NotOnOrAfter') ?? '');
    const skew = this.opts.clockSkewMs ?? DEFAULT_SKEW_MS;
    this.seen.set(assertionId, Math.min(Number.isFinite(notOnOrAfter) ? notOnOrAfter + skew : Infinity, now + MAX_REPLAY_WINDOW_MS));
    return { ok: true, user, groups: groupsOf(profile, this.opts.groupsAttribute), inResponseTo };
  }

  private config(generateUniqueId: () => string): SamlConfig {
    return {
      entryPoint: this.opts.idp.ssoUrl,
      issuer: this.opts.entityId,
      audience: this.opts.entityId,
      callbackUrl: this.opts.acsUrl,
      idpCert: this.opts.idp.signingCertsPem,
      // The assertion must be signed; a signed Response around it is welcome but not required,
      // since most IdPs sign only the assertion.
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: this.requests.ttlMs,
      cacheProvider: this.requests,
      acceptedClockSkewMs: this.opts.clockSkewMs ?? DEFAULT_SKEW_MS,
      identifierFormat: null,
      disableRequestedAuthnContext: true,
      signatureAlgorithm: 'sha256',
      generateUniqueId,
    };
  }
}

function refuse(reason: SamlRefusal, detail: string): SamlVerdict {
  return { ok: false, reason, detail: detail.slice(0, 300) };
}

/** node-saml reports failures as plain Errors; their messages are stable enough to sort. */
function classify(err: unknown): SamlRefusal {
  if (err instanceof SamlStatusError) return 'idp-error';
  const m = (err as Error).message ?? '';
  if (/InResponseTo/i.test(m)) return 'unknown-in-response-to';
  if (/signature/i.test(m)) return 'bad-signature';
  if (/audience/i.test(m)) return 'wrong-audience';
  if (/not yet valid/i.test(m)) return 'not-yet-valid';
  // "No valid subject confirmation": every SubjectConfirmationData failed its time window.
  if (/expired|no valid subject confirmation/i.test(m)) return 'expired';
  return 'malformed';
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] ?? '';
}

function groupsOf(profile: Profile, attribute: string): string[] {
  const raw = (profile.attributes as Record<string, unknown> | undefined)?.[attribute];
  const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return values.filter((v): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256);
}

function randomId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

/** node-saml's request-id cache, with an expiry and no timer to keep the process alive. */
class ExpiringCache implements CacheProvider {
  ttlMs = DEFAULT_REQUEST_TTL_MS;
  private readonly items = new Map<string, CacheItem>();

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    const now = Date.now();
    for (const [k, item] of this.items) if (item.createdAt + this.ttlMs <= now) this.items.delete(k);
    if (this.items.has(key)) return null;
    const item = { value, createdAt: now };
    this.items.set(key, item);
    return item;
  }

  async getAsync(key: string): Promise<string | null> {
    const item = this.items.get(key);
    if (!item || item.createdAt + this.ttlMs <= Date.now()) return null;
    return item.value;
  }

  async removeAsync(key: string | null): Promise<string | null> {
    if (key === null) return null;
    const item = this.items.get(key);
    this.items.delete(key);
    return item?.value ?? null;
  }
}
