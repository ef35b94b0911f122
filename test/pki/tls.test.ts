import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { identityFromCertificate, identityToUri } from '../../src/protocol/pki.js';
import {
  createInfraCa,
  createTenantPki,
  issueServerCertificate,
  openRevocationList,
  type CertificateAuthority,
  type ServerCredential,
  type TenantPki,
} from '../../src/edge/ca/index.js';
import { clientIdentity, connectorIdentity, enroll, withTempDir } from './fixtures.js';

const DAY = 86_400_000;

type ServerSide =
  | { ok: true; peer: tls.PeerCertificate; authorized: boolean; authorizationError: string | undefined; protocol: string | null }
  | { ok: false; error: Error };

interface ClientSide {
  serverCert: tls.PeerCertificate | undefined;
  received: string;
  error: (Error & { code?: string }) | undefined;
}

/**
 * One handshake between a fresh server and client; reports what each side saw.
 * Note: a Node server with rejectUnauthorized drops a rejected client without a TLS alert, so
 * the reason (e.g. CERT_HAS_EXPIRED) is only visible as `authorizationError` on a server that
 * sets rejectUnauthorized: false and checks `authorized` itself.
 */
async function handshake(server: tls.TlsOptions, client: tls.ConnectionOptions): Promise<{ server: ServerSide; client: ClientSide }> {
  const srv = tls.createServer({ minVersion: 'TLSv1.3', requestCert: true, rejectUnauthorized: true, ...server });
  const serverSide = new Promise<ServerSide>((resolve) => {
    srv.on('secureConnection', (socket: tls.TLSSocket) => {
      resolve({
        ok: true,
        peer: socket.getPeerCertificate(),
        authorized: socket.authorized,
        // Node stores the OpenSSL verify code here, despite the typings saying Error.
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
        protocol: socket.getProtocol(),
      });
      socket.end('hello');
    });
    srv.on('tlsClientError', (error) => resolve({ ok: false, error }));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const clientSide = await new Promise<ClientSide>((resolve) => {
      const result: ClientSide = { serverCert: undefined, received: '', error: undefined };
      const socket = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, minVersion: 'TLSv1.3', ...client });
      socket.setEncoding('utf8');
      socket.on('secureConnect', () => (result.serverCert = socket.getPeerCertificate()));
      socket.on('data', (chunk: string) => (result.received += chunk));
      socket.on('error', (error) => (result.error ??= error));
      socket.on('close', () => resolve(result));
    });
    return { server: await serverSide, client: clientSide };
  } finally {
    srv.close();
  }
}

let demo: TenantPki;
let other: TenantPki;
let infra: CertificateAuthority;
let edge: ServerCredential;

beforeAll(async () => {
  [demo, other, infra] = await Promise.all([createTenantPki('demo'), createTenantPki('other'), createInfraCa()]);
  edge = await issueServerCertificate(infra, { name: 'edge-1', dnsNames: ['edge.zcc.test'], ipAddresses: ['127.0.0.1'] });
});

/** The edge: infra-issued server certificate, trusting only the tenant's root for clients. */
function edgeServer(tenant: TenantPki = demo, overrides: tls.TlsOptions = {}): tls.TlsOptions {
  return { key: edge.keyPem, cert: edge.chainPem, ca: tenant.root.certPem, ...overrides };
}

describe('mutual TLS 1.3 with zcc certificates', () => {
  it('authenticates both sides and yields the client identity from the peer certificate', async () => {
    const identity = clientIdentity('demo');
    const leaf = await enroll(demo.client, identity);
    const { server, client } = await handshake(edgeServer(), { key: leaf.keyPem, cert: leaf.chainPem, ca: infra.certPem });
    expect(client.error).toBeUndefined();
    expect(client.received).toBe('hello');
    if (!server.ok) throw server.error;
    expect(server.authorized).toBe(true);
    expect(server.protocol).toBe('TLSv1.3');
    expect(identityFromCertificate(server.peer.raw)).toEqual(identity);
    expect(server.peer.subjectaltname).toBe(`URI:${identityToUri(identity)}`);
    // The client learns which edge it reached the same way.
    expect(client.serverCert && identityFromCertificate(client.serverCert.raw)).toEqual({ kind: 'edge', name: 'edge-1' });
  });

  it('accepts a connector of the same tenant and tells it apart by identity kind', async () => {
    const leaf = await enroll(demo.connector, connectorIdentity('demo'));
    const { server } = await handshake(edgeServer(), { key: leaf.keyPem, cert: leaf.chainPem, ca: infra.certPem, servername: 'edge.zcc.test' });
    if (!server.ok) throw server.error;
    expect(identityFromCertificate(server.peer.raw)).toEqual(connectorIdentity('demo'));
  });

  it('rejects a client certificate of another tenant', async () => {
    const leaf = await enroll(other.client, clientIdentity('other'));
    const { server, client } = await handshake(edgeServer(demo), { key: leaf.keyPem, cert: leaf.chainPem, ca: infra.certPem });
    expect(server.ok).toBe(false);
    expect(client.received).toBe('');

    const lenient = await handshake(edgeServer(demo, { rejectUnauthorized: false }), { key: leaf.keyPem, cert: leaf.chainPem, ca: infra.certPem });
    if (!lenient.server.ok) throw lenient.server.error;
    expect(lenient.server.authorized).toBe(false);
    expect(lenient.server.authorizationError).toMatch(/^UNABLE_TO_GET_ISSUER_CERT/);
  });

  it('rejects an expired client certificate with CERT_HAS_EXPIRED', async () => {
    const leaf = await enroll(demo.client, clientIdentity('demo'), { notBefore: new Date(Date.now() - 10 * DAY), validityDays: 1 });
    const { server, client } = await handshake(edgeServer(), { key: leaf.keyPem, cert: leaf.chainPem, ca: infra.certPem });
    expect(server.ok).toBe(false);
    expect(client.received).toBe('');

    const lenient = await handshake(edgeServer(demo, { rejectUnauthorized: false }), { key: leaf.keyPem, cert: leaf.chainPem, ca: infra.certPem });
    if (!lenient.server.ok) throw lenient.server.error;
    expect(lenient.server.authorizationError).toBe('CERT_HAS_EXPIRED');
  });

  it('needs the intermediate: a bare leaf does not chain to the root', async () => {
    const leaf = await enroll(demo.client, clientIdentity('demo'));
    const { server } = await handshake(edgeServer(), { key: leaf.keyPem, cert: leaf.certPem, ca: infra.certPem });
    expect(server.ok).toBe(false);
  });

  it('checks the edge certificate against the infrastructure root and the dialled name', async () => {
    const leaf = await enroll(demo.client, clientIdentity('demo'));
    const creds = { key: leaf.keyPem, cert: leaf.chainPem };
    const byName = await handshake(edgeServer(), { ...creds, ca: infra.certPem, servername: 'edge.zcc.test' });
    expect(byName.client.error).toBeUndefined();

    const wrongName = await handshake(edgeServer(), { ...creds, ca: infra.certPem, servername: 'evil.zcc.test' });
    expect(wrongName.client.error?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');

    // A tenant root must not vouch for edge servers.
    const wrongRoot = await handshake(edgeServer(), { ...creds, ca: demo.root.certPem });
    expect(wrongRoot.client.error?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it("matches Node's serial format against the revocation list", async () => {
    const leaf = await enroll(demo.client, clientIdentity('demo'));
    const { server } = await handshake(edgeServer(), { key: leaf.keyPem, cert: leaf.chainPem, ca: infra.certPem });
    if (!server.ok) throw server.error;
    await withTempDir(async (dir) => {
      const revoked = await openRevocationList(`${dir}/revoked.json`, 'demo');
      expect(revoked.isRevoked(server.peer.serialNumber)).toBe(false);
      await revoked.revoke(leaf.serialNumber);
      expect(revoked.isRevoked(server.peer.serialNumber)).toBe(true);
    });
  });
});
