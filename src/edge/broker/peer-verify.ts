import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { identityFromCertificate, type Identity } from '../../protocol/pki.js';
import { canonicalSerial } from '../../protocol/cert-serial.js';

/** What the edge trusts for one tenant: its issuing CAs and its revocations. */
export interface TenantTrust {
  tenant: string;
  rootPem: string;
  clientCaPem: string;
  connectorCaPem: string;
  isRevoked(serialHex: string): boolean;
}

export type PeerIdentity = Extract<Identity, { kind: 'client' } | { kind: 'connector' }> & { serial: string };

export type RefusalCode = 'untrusted' | 'no-certificate' | 'no-identity' | 'wrong-role' | 'unknown-tenant' | 'wrong-ca' | 'revoked' | 'fingerprint-mismatch';

/** Why a peer is refused; `role` is set once its certificate says whether it is an agent or a connector. */
export interface PeerRefusal {
  ok: false;
  code: RefusalCode;
  reason: string;
  role?: 'client' | 'connector';
}

export type PeerCheck = { ok: true; identity: PeerIdentity } | PeerRefusal;

/**
 * Decides who is on the other end of a Z-Tunnel. The TLS layer already checked the chain against
 * the union of tenant roots; here the certificate must also have been issued by the sub-CA of the
 * tenant it names, for the role it claims, so tenant A's CA can never vouch for a tenant B user.
 */
export function verifyPeer(socket: TLSSocket, trustOf: (tenant: string) => TenantTrust | undefined): PeerCheck {
  if (!socket.authorized) return { ok: false, code: 'untrusted', reason: `client certificate not trusted: ${String(socket.authorizationError)}` };
  const leaf = socket.getPeerX509Certificate();
  if (!leaf) return { ok: false, code: 'no-certificate', reason: 'no client certificate' };
  let identity: Identity;
  try {
    identity = identityFromCertificate(leaf.raw);
  } catch (err) {
    return { ok: false, code: 'no-identity', reason: `client certificate has no valid zcc identity: ${(err as Error).message}` };
  }
  if (identity.kind === 'edge') return { ok: false, code: 'wrong-role', reason: 'an edge certificate cannot open a Z-Tunnel' };
  const role = identity.kind;
  const trust = trustOf(identity.tenant);
  if (!trust) return { ok: false, code: 'unknown-tenant', role, reason: `unknown tenant ${JSON.stringify(identity.tenant)}` };
  const issuerPem = identity.kind === 'client' ? trust.clientCaPem : trust.connectorCaPem;
  const issuer = new X509Certificate(issuerPem);
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) {
    return { ok: false, code: 'wrong-ca', role, reason: `certificate for tenant ${identity.tenant} was not issued by that tenant's ${identity.kind} CA` };
  }
  const serial = canonicalSerial(leaf.serialNumber);
  if (trust.isRevoked(serial)) return { ok: false, code: 'revoked', role, reason: `certificate ${serial} of tenant ${identity.tenant} is revoked` };
  return { ok: true, identity: { ...identity, serial } };
}

/**
 * The second half of an agent's identity check, once its hello is in: the device fingerprint it
 * computes now must be the one certified at enrollment. A key and certificate copied to another
 * device pass TLS but present that device's fingerprint (or, from an agent that sends none,
 * nothing), and are refused. Returns null when the agent may go on.
 */
export function verifyDeviceFingerprint(identity: Extract<PeerIdentity, { kind: 'client' }>, presented: string | undefined): PeerRefusal | null {
  if (presented === identity.fingerprint) return null;
  // ASCII only and hash prefixes: it travels in a GOAWAY and ends up in the agent's status line.
  const what = presented === undefined ? 'presented no device fingerprint' : `presented device fingerprint ${presented.slice(0, 16)}`;
  return {
    ok: false,
    code: 'fingerprint-mismatch',
    role: 'client',
    reason: `fingerprint mismatch: agent ${identity.user}@${identity.device} ${what}, but certificate ${identity.serial} was enrolled on device ${identity.fingerprint.slice(0, 16)} (copied client or state); enroll again on this device`,
  };
}
