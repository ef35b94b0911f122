import { ENROLL_PATHS, postEnroll } from '../../protocol/enroll-api.js';
import type { TlsIdentity } from '../../protocol/tls.js';
import { loadPki } from './pki-loader.js';

export interface TokenEnrollParams {
  tenant: string;
  token: string;
  device: string;
  fingerprint: string;
  enroll: string;
  serverName: string;
  caPem: string;
}

/**
 * Enrolls with an MDM-provided token: the key pair is generated here and only the CSR leaves
 * the device; the returned chain plus the local key form the Z-Tunnel identity.
 */
export async function enrollWithToken(p: TokenEnrollParams): Promise<TlsIdentity & { identityUri: string }> {
  const { createCsr, generateKeyPair } = await loadPki();
  const keys = await generateKeyPair();
  const csr = await createCsr({ keys, subject: { commonName: p.device } });
  const res = await postEnroll(p.enroll, ENROLL_PATHS.agent, { tenant: p.tenant, token: p.token, device: p.device, fingerprint: p.fingerprint, csr }, p.caPem, p.serverName);
  return { keyPem: keys.privateKeyPem, certPem: res.certChainPem, identityUri: res.identityUri };
}
