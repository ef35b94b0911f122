import { inflateRawSync } from 'node:zlib';
import { children, parseXml, SAML_NS, SAMLP_NS, textOf } from '../enroll/saml-xml.js';

/** What the IdP needs from an AuthnRequest received over the HTTP-Redirect binding. */
export interface AuthnRequestInfo {
  id: string;
  /** The SP's entity id. */
  issuer: string;
  /** Where the SP asks the response to be posted; absent means "the one registered". */
  acsUrl?: string;
}

// An AuthnRequest is a few hundred bytes; the cap keeps a deflate bomb from costing memory.
const MAX_INFLATED = 64 << 10;

/**
 * Decodes `SAMLRequest` as the HTTP-Redirect binding carries it (base64 of raw DEFLATE) and
 * reads the fields the IdP acts on. Throws with a message fit for the user and the log.
 */
export function parseRedirectAuthnRequest(samlRequest: string): AuthnRequestInfo {
  let xml: string;
  try {
    xml = inflateRawSync(Buffer.from(samlRequest, 'base64'), { maxOutputLength: MAX_INFLATED }).toString('utf8');
  } catch {
    throw new Error('SAMLRequest is not base64 of DEFLATE data (HTTP-Redirect binding)');
  }
  const root = parseXml(xml, 'SAMLRequest');
  if (root.namespaceURI !== SAMLP_NS || root.localName !== 'AuthnRequest') throw new Error('SAMLRequest is not an AuthnRequest');
  const id = root.getAttribute('ID') ?? '';
  // IDs are echoed into our response as InResponseTo: keep them to what an xs:ID looks like.
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,255}$/.test(id)) throw new Error('AuthnRequest has no valid ID');
  const issuer = textOf(children(root, SAML_NS, 'Issuer')[0]);
  if (!issuer) throw new Error('AuthnRequest has no Issuer');
  const acsUrl = root.getAttribute('AssertionConsumerServiceURL') || undefined;
  return { id, issuer, acsUrl };
}
