// Public surface of the reference cloud's CA; edge code imports from here.
export {
  CLOCK_SKEW_MS,
  certificateAuthorityFromPem,
  chainPem,
  createInfraCa,
  createTenantPki,
  issueFromCsr,
  issueServerCertificate,
  normalizeSerial,
  type CaRole,
  type CertificateAuthority,
  type IssueFromCsrOptions,
  type IssuedCertificate,
  type ServerCertificateOptions,
  type ServerCredential,
  type TenantPki,
} from './tenant-pki.js';
export { MASTER_KEY_BYTES, loadOrCreateInfraCa, loadOrCreateMasterKey, loadOrCreateTenantPki } from './ca-store.js';
export { openRevocationList, type RevocationList } from './revocation.js';
