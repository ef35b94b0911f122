import type { ConnectionOptions, TlsOptions } from 'node:tls';
import { ZTUNNEL_ALPN } from './version.js';

/** Key material of one side of a Z-Tunnel. `certPem` holds the leaf followed by its intermediates. */
export interface TlsIdentity {
  keyPem: string;
  certPem: string;
}

/**
 * TLS 1.3 and nothing else: older versions are refused in both directions. All three TLS 1.3
 * suites stay allowed; AES-128-GCM is preferred (OpenSSL's default puts AES-256-GCM first): it
 * is the cheaper of the two wherever AES runs in hardware, and no weaker for a session key.
 * (Node takes TLS 1.3 suite names in `ciphers`.)
 */
export const TLS13_CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
const TLS13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: TLS13_CIPHERSUITES } as const;

/**
 * Options of the edge's Z-Tunnel listener: client certificates are required and verified against
 * the given tenant roots only; which tenant a certificate belongs to is checked after the
 * handshake (see the edge's peer verification).
 */
export function tunnelServerOptions(identity: TlsIdentity, clientRoots: string[]): TlsOptions {
  return {
    ...TLS13,
    key: identity.keyPem,
    cert: identity.certPem,
    ca: clientRoots,
    requestCert: true,
    rejectUnauthorized: true,
    // The edge's order of the suites decides, not each client's.
    honorCipherOrder: true,
    ALPNProtocols: [ZTUNNEL_ALPN],
  };
}

/**
 * Options for dialling an edge: the cloud's CA is pinned by passing it as the only trust anchor,
 * which replaces Node's bundled roots, so a certificate from any public CA is refused.
 */
export function tunnelClientOptions(identity: TlsIdentity, pinnedCaPem: string, servername: string): ConnectionOptions {
  return {
    ...TLS13,
    key: identity.keyPem,
    cert: identity.certPem,
    ca: [pinnedCaPem],
    servername: isIp(servername) ? undefined : servername,
    rejectUnauthorized: true,
    ALPNProtocols: [ZTUNNEL_ALPN],
  };
}

/** Options for HTTPS calls to the cloud (enrollment) with the same pin and no client certificate. */
export function pinnedHttpsOptions(pinnedCaPem: string): ConnectionOptions {
  return { ...TLS13, ca: [pinnedCaPem], rejectUnauthorized: true };
}

export function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/** Splits "host:port" (IPv6 in brackets) with a clear error naming the setting. */
export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what}: expected HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: (m[1] ?? m[2]) as string, port };
}
