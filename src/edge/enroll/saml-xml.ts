import { DOMParser, onErrorStopParsing } from '@xmldom/xmldom';

export const MD_NS = 'urn:oasis:names:tc:SAML:2.0:metadata';
export const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
export const SAMLP_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const SAML_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';

/** The subset of the DOM the SAML helpers walk; xmldom's own types are structurally this. */
export type XmlElement = ReturnType<DOMParser['parseFromString']>['documentElement'] & object;

/**
 * Parses XML that came from outside (metadata, AuthnRequests, assertions). A DOCTYPE is refused
 * outright — SAML never needs one and it is the door to entity-expansion tricks — and any parse
 * error stops parsing instead of yielding a half-read document.
 */
export function parseXml(xml: string, what: string): XmlElement {
  if (/<!DOCTYPE/i.test(xml)) throw new Error(`${what}: DOCTYPE is not allowed`);
  let root: XmlElement | null;
  try {
    root = new DOMParser({ onError: onErrorStopParsing }).parseFromString(xml, 'text/xml').documentElement;
  } catch (err) {
    throw new Error(`${what}: not well-formed XML (${(err as Error).message.split('\n')[0]})`);
  }
  if (!root) throw new Error(`${what}: empty document`);
  return root;
}

/** Direct children of `el` with this namespace and local name. */
export function children(el: XmlElement, ns: string, localName: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as XmlElement).namespaceURI === ns && (n as XmlElement).localName === localName) out.push(n as XmlElement);
  }
  return out;
}

/** Descendants of `el` with this namespace and local name, in document order. */
export function descendants(el: XmlElement, ns: string, localName: string): XmlElement[] {
  return Array.from(el.getElementsByTagNameNS(ns, localName)) as XmlElement[];
}

export function textOf(el: XmlElement | undefined): string {
  return (el?.textContent ?? '').trim();
}
