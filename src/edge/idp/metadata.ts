import { attr, text } from './assertion.js';

const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

/**
 * The demo IdP's SAML 2.0 metadata: entity id, signing certificate and the SSO endpoint
 * (HTTP-Redirect binding). It is all an SP needs to trust this IdP, and what the cloud's own SP
 * is configured from — the same path an external IdP's metadata takes.
 */
export function idpMetadataXml(p: { entityId: string; ssoUrl: string; certBase64: string }): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${attr(p.entityId)}">` +
    `<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${text(p.certBase64)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    `<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>` +
    `<md:SingleSignOnService Binding="${REDIRECT_BINDING}" Location="${attr(p.ssoUrl)}"/>` +
    `</md:IDPSSODescriptor>` +
    `</md:EntityDescriptor>\n`
  );
}
