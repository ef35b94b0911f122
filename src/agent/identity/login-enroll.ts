import { ENROLL_PATHS, LOGIN_PATHS, LoginRefreshResponse, postEnroll } from '../../protocol/enroll-api.js';
import type { TlsIdentity } from '../../protocol/tls.js';
import { loadPki } from './pki-loader.js';
import { postLoginApi } from './login-api.js';

export interface CloudEndpoint {
  /** The enrollment service, HOST:PORT. */
  enroll: string;
  serverName: string;
  caPem: string;
}

/**
 * Enrolls this device with a login ticket (from loginWithBrowser): the certificate names the
 * user the IdP asserted, and the edge's auth record carries the assertion's groups. As with a
 * token, the key pair is made here and only the CSR leaves the device.
 */
export async function enrollWithTicket(p: CloudEndpoint & { tenant: string; ticket: string; device: string; fingerprint: string }): Promise<TlsIdentity & { identityUri: string }> {
  const { createCsr, generateKeyPair } = await loadPki();
  const keys = await generateKeyPair();
  const csr = await createCsr({ keys, subject: { commonName: p.device } });
  const body = { tenant: p.tenant, ticket: p.ticket, device: p.device, fingerprint: p.fingerprint, csr };
  const res = await postEnroll(p.enroll, ENROLL_PATHS.agent, body, p.caPem, p.serverName);
  return { keyPem: keys.privateKeyPem, certPem: res.certChainPem, identityUri: res.identityUri };
}

/** What applies a successful re-authentication to a Z-Tunnel's status (TunnelClient does). */
export interface ReauthTarget {
  applyReauth(authExpiresAt: string): void;
}

/**
 * Re-authenticates an enrolled device after its authentication timed out (or before): mutual
 * TLS with the device certificate says which device and user, the fresh ticket proves that user
 * just logged in. The edge renews the auth record, so new microtunnels are allowed again at
 * once on the Z-Tunnel already up; `tunnel`, if given, learns the new expiry.
 */
export async function reauthenticate(
  p: CloudEndpoint & { identity: TlsIdentity; ticket: string; fingerprint: string; tunnel?: ReauthTarget },
): Promise<LoginRefreshResponse> {
  const res = await postLoginApi({ ...p, clientIdentity: p.identity }, LOGIN_PATHS.refresh, { ticket: p.ticket, fingerprint: p.fingerprint }, LoginRefreshResponse);
  p.tunnel?.applyReauth(res.authExpiresAt);
  return res;
}
