import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCsr, generateKeyPair, type Identity } from '../../src/protocol/pki.js';
import { issueFromCsr, type CertificateAuthority, type IssuedCertificate } from '../../src/edge/ca/index.js';

export const execFileAsync = promisify(execFile);

export function clientIdentity(tenant: string, user = 'alice@demo.internal'): Identity {
  return { kind: 'client', tenant, user, device: 'dev-1234', fingerprint: 'c0ffee'.repeat(10) + 'beef' };
}

export function connectorIdentity(tenant: string): Identity {
  return { kind: 'connector', tenant, connector: 'conn-1', group: 'group-a' };
}

/** What an enrolling device does (key + CSR locally) followed by the CA's issuance. */
export async function enroll(
  ca: CertificateAuthority,
  identity: Identity,
  options: { validityDays?: number; notBefore?: Date; claimed?: Identity } = {},
): Promise<IssuedCertificate & { keyPem: string }> {
  const keys = await generateKeyPair();
  const csr = await createCsr({ keys, subject: { commonName: 'device' }, identity: options.claimed ?? identity });
  const issued = await issueFromCsr(ca, csr, {
    identity,
    validityDays: options.validityDays ?? 30,
    ...(options.notBefore ? { notBefore: options.notBefore } : {}),
  });
  return { ...issued, keyPem: keys.privateKeyPem };
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'zcc-pki-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `openssl verify` on PEM inputs; resolves to its combined output, rejects on failure. */
export async function opensslVerify(params: { root: string; untrusted?: string; leaf: string; purpose: string }): Promise<string> {
  return withTempDir(async (dir) => {
    const paths = { root: join(dir, 'root.pem'), untrusted: join(dir, 'sub.pem'), leaf: join(dir, 'leaf.pem') };
    await writeFile(paths.root, params.root);
    await writeFile(paths.leaf, params.leaf);
    const args = ['verify', '-x509_strict', '-purpose', params.purpose, '-CAfile', paths.root];
    if (params.untrusted) {
      await writeFile(paths.untrusted, params.untrusted);
      args.push('-untrusted', paths.untrusted);
    }
    args.push(paths.leaf);
    const { stdout, stderr } = await execFileAsync('openssl', args);
    return stdout + stderr;
  });
}
