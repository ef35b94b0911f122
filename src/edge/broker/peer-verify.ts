import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { identityFromCertificate, type Identity } from '../../protocol/pki.js';

/** What the edge trusts for one tenant: its issuing CAs and its revocations. */
export interface TenantTrust {
  tenant: string;
  rootPem: string;
  clientCaPem: string;
  connectorCaPem: string;
  isRevoked(serialHex: string): boolean;
}

export type PeerIdentity = Extract<Identity, { kind: 'client' } | { kind: 'connector' }> & { serial: string };

export type PeerCheck = { ok: true; identity: PeerIdentity } | { ok: false; reason: string };

/**
 * Decides who is on the other end of a Z-Tunnel. The TLS layer already checked the chain against
 * the union of tenant roots; here the certificate must also have been issued by the sub-CA of the
 * tenant it names, for the role it claims, so tenant A's CA can never vouch for a tenant B user.
 */
export function verifyPeer(socket: TLSSocket, trustOf: (tenant: string) => TenantTrust | undefined): PeerCheck {
  if (!socket.authorized) return { ok: false, reason: `client certificate not trusted: ${String(socket.authorizationError)}` };
  const leaf = socket.getPeerX509Certificate();
  if (!leaf) return { ok: false, reason: 'no client certificate' };
  let identity: Identity;
  try {
    identity = identityFromCertificate(leaf.raw);
  } catch (err) {
    return { ok: false, reason: `client certificate has no valid zcc identity: ${(err as Error).message}` };
  }
  if (identity.kind === 'edge') return { ok: false, reason: 'an edge certificate cannot open a Z-Tunnel' };
  const trust = trustOf(identity.tenant);
  if (!trust) return { ok: false, reason: `unknown tenant ${JSON.stringify(identity.tenant)}` };
  const issuerPem = identity.kind === 'client' ? trust.clientCaPem : trust.connectorCaPem;
  const issuer = new X509Certificate(issuerPem);
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) {
    return { ok: false, reason: `certificate for tenant ${identity.tenant} was not issued by that tenant's ${identity.kind} CA` };
  }
  const serial = leaf.serialNumber.toLowerCase();
  if (trust.isRevoked(serial)) return { ok: false, reason: `certificate ${serial} is revoked` };
  return { ok: true, identity: { ...identity, serial } };
}
