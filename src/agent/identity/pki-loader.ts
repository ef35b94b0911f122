/**
 * The PKI module, loaded when the agent first needs it. @peculiar/x509 and its ASN.1 stack hold
 * about 20 MB of resident memory once imported (a bare Node process: 41 MB; with the library:
 * 62 MB), and the agent uses them only to make a CSR when it enrolls or renews, i.e. once per
 * certificate lifetime. An agent started from its sealed state never loads them.
 */
export function loadPki(): Promise<typeof import('../../protocol/pki.js')> {
  return import('../../protocol/pki.js');
}
