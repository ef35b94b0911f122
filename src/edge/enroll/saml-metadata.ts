import { X509Certificate } from 'node:crypto';
import { children, descendants, DSIG_NS, MD_NS, parseXml, textOf, type XmlElement } from './saml-xml.js';

const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

/** What the SP takes from an IdP's metadata: who it is, where to send users, which keys sign. */
export interface IdpMetadata {
  entityId: string;
  /** SingleSignOnService location for the HTTP-Redirect binding. */
  ssoUrl: string;
  /** PEM certificates whose keys may sign assertions (several during a key rollover). */
  signingCertsPem: string[];
}

/**
 * Reads standard SAML 2.0 IdP metadata (an EntityDescriptor, or an EntitiesDescriptor holding
 * exactly one IdP), so any IdP that publishes metadata can be plugged in. Errors say what is
 * missing; nothing from the metadata is trusted beyond these three facts.
 */
export function parseIdpMetadata(xml: string): IdpMetadata {
  const root = parseXml(xml, 'IdP metadata');
  if (root.namespaceURI !== MD_NS) throw new Error('IdP metadata: root is not in the SAML 2.0 metadata namespace');
  const entities = root.localName === 'EntityDescriptor' ? [root] : root.localName === 'EntitiesDescriptor' ? descendants(root, MD_NS, 'EntityDescriptor') : [];
  const idps = entities.flatMap((e) => children(e, MD_NS, 'IDPSSODescriptor').map((d) => ({ entity: e, descriptor: d })));
  if (idps.length !== 1) throw new Error(`IdP metadata: expected exactly one IDPSSODescriptor, found ${idps.length}`);
  const { entity, descriptor } = idps[0]!;

  const entityId = entity.getAttribute('entityID') ?? '';
  if (!entityId) throw new Error('IdP metadata: EntityDescriptor has no entityID');

  const sso = children(descriptor, MD_NS, 'SingleSignOnService').find((s) => s.getAttribute('Binding') === REDIRECT_BINDING);
  const ssoUrl = sso?.getAttribute('Location') ?? '';
  if (!ssoUrl) throw new Error('IdP metadata: no SingleSignOnService with the HTTP-Redirect binding');
  checkUrl(ssoUrl);

  const signingCertsPem = children(descriptor, MD_NS, 'KeyDescriptor')
    // A KeyDescriptor without `use` serves both signing and encryption (metadata spec §2.4.1.1).
    .filter((k) => (k.getAttribute('use') ?? 'signing') === 'signing' || k.getAttribute('use') === '')
    .flatMap((k) => certificatesIn(k));
  if (signingCertsPem.length === 0) throw new Error('IdP metadata: no signing certificate (KeyDescriptor use="signing")');
  return { entityId, ssoUrl, signingCertsPem };
}

function certificatesIn(keyDescriptor: XmlElement): string[] {
  return descendants(keyDescriptor, DSIG_NS, 'X509Certificate').map((c) => {
    const b64 = textOf(c).replace(/\s+/g, '');
    const pem = `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
    try {
      new X509Certificate(pem);
    } catch {
      throw new Error('IdP metadata: an X509Certificate does not parse');
    }
    return pem;
  });
}

/** Users are sent to this URL with a request in it: it must be HTTPS, or HTTP on loopback. */
function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('IdP metadata: SingleSignOnService Location is not a URL');
  }
  const loopback = u.hostname === '127.0.0.1' || u.hostname === '[::1]' || u.hostname === 'localhost';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
    throw new Error('IdP metadata: SingleSignOnService Location must be https (or http on loopback)');
  }
}
