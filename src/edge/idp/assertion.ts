import { randomBytes } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { SAML_NS, SAMLP_NS } from '../enroll/saml-xml.js';
import type { IdpSigningKey } from './idp-keys.js';

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** Bearer assertions are short-lived: they only have to survive one browser round trip. */
export const ASSERTION_LIFETIME_MS = 5 * 60_000;

export interface ResponseParams {
  key: Pick<IdpSigningKey, 'keyPem' | 'certPem'>;
  /** The IdP's entity id. */
  issuer: string;
  /** The SP's entity id (AudienceRestriction). */
  audience: string;
  /** The SP's ACS URL: Response Destination and SubjectConfirmationData Recipient. */
  acsUrl: string;
  /** The AuthnRequest ID this answers; absent for an unsolicited response. */
  inResponseTo?: string;
  nameId: string;
  groups: readonly string[];
  groupsAttribute?: string;
  now?: Date;
  /** Overrides of the validity window (tests build expired or not-yet-valid assertions). */
  notBefore?: Date;
  notOnOrAfter?: Date;
}

export interface SignedResponse {
  xml: string;
  responseId: string;
  assertionId: string;
}

/**
 * Builds a SAML 2.0 Response carrying one assertion, the assertion signed (enveloped RSA-SHA256,
 * exclusive C14N, the signature right after its Issuer as the schema requires). The Response
 * itself is not signed: the SP accepts only what the assertion's signature covers.
 */
export function buildSignedResponse(p: ResponseParams): SignedResponse {
  const now = p.now ?? new Date();
  const notBefore = p.notBefore ?? new Date(now.getTime() - 60_000);
  const notOnOrAfter = p.notOnOrAfter ?? new Date(now.getTime() + ASSERTION_LIFETIME_MS);
  const responseId = newSamlId();
  const assertionId = newSamlId();
  const irt = p.inResponseTo !== undefined ? ` InResponseTo="${attr(p.inResponseTo)}"` : '';
  const groups = p.groups.map((g) => `<saml:AttributeValue>${text(g)}</saml:AttributeValue>`).join('');
  const assertion =
    `<saml:Assertion xmlns:saml="${SAML_NS}" ID="${assertionId}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${text(p.issuer)}</saml:Issuer>` +
    `<saml:Subject>` +
    `<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">${text(p.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
    `<saml:SubjectConfirmationData${irt} NotOnOrAfter="${iso(notOnOrAfter)}" Recipient="${attr(p.acsUrl)}"/>` +
    `</saml:SubjectConfirmation>` +
    `</saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(notBefore)}" NotOnOrAfter="${iso(notOnOrAfter)}">` +
    `<saml:AudienceRestriction><saml:Audience>${text(p.audience)}</saml:Audience></saml:AudienceRestriction>` +
    `</saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${newSamlId()}">` +
    `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>` +
    `</saml:AuthnStatement>` +
    `<saml:AttributeStatement>` +
    `<saml:Attribute Name="${attr(p.groupsAttribute ?? 'groups')}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${groups}</saml:Attribute>` +
    `</saml:AttributeStatement>` +
    `</saml:Assertion>`;
  const unsigned =
    `<samlp:Response xmlns:samlp="${SAMLP_NS}" xmlns:saml="${SAML_NS}" ID="${responseId}" Version="2.0" IssueInstant="${iso(now)}" Destination="${attr(p.acsUrl)}"${irt}>` +
    `<saml:Issuer>${text(p.issuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    assertion +
    `</samlp:Response>`;
  return { xml: signAssertion(unsigned, p.key), responseId, assertionId };
}

function signAssertion(xml: string, key: Pick<IdpSigningKey, 'keyPem' | 'certPem'>): string {
  const sig = new SignedXml({ privateKey: key.keyPem, publicCert: key.certPem, signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  const assertionPath = `/*[local-name(.)='Response']/*[local-name(.)='Assertion']`;
  sig.addReference({ xpath: assertionPath, transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: SHA256 });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${assertionPath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

/** A SAML ID: an XML NCName (so it may not start with a digit) with 160 random bits. */
export function newSamlId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

function iso(d: Date): string {
  // SAML wants xs:dateTime in UTC; milliseconds are allowed but many IdPs omit them.
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Escapes character data. */
export function text(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes an attribute value (double-quoted). */
export function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}
