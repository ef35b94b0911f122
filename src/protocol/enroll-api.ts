import https from 'node:https';
import { z } from 'zod';
import { pinnedHttpsOptions, parseHostPort } from './tls.js';

/** Enrollment of an app connector with a one-time provisioning key (seed 000). */
export const ConnectorEnrollRequest = z.strictObject({
  provisioningKey: z.string().min(16).max(256),
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  csr: z.string().min(1).max(16_384),
});

/** Enrollment of an agent, authorised by an MDM token or a login ticket from the SAML flow. */
export const AgentEnrollRequest = z.strictObject({
  tenant: z.string().min(1).max(64),
  token: z.string().min(16).max(1024),
  device: z.string().min(1).max(128),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  csr: z.string().min(1).max(16_384),
});

export const EnrollResponse = z.object({
  tenant: z.string(),
  /** Leaf followed by the issuing sub-CA, ready to present in a TLS handshake. */
  certChainPem: z.string(),
  identityUri: z.string(),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

export const ENROLL_PATHS = { connector: '/v1/enroll/connector', agent: '/v1/enroll/agent' } as const;

export class EnrollError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'EnrollError';
  }
}

/** POSTs JSON to the cloud's enrollment service over TLS 1.3 with the cloud CA pinned. */
export function postEnroll(address: string, path: string, body: unknown, pinnedCaPem: string, servername: string): Promise<EnrollResponse> {
  const { host, port } = parseHostPort(address, 'enrollment address');
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        ...pinnedHttpsOptions(pinnedCaPem),
        host,
        port,
        servername,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new EnrollError(res.statusCode ?? 0, `enrollment refused (${res.statusCode}): ${text.slice(0, 300)}`));
          try {
            resolve(EnrollResponse.parse(JSON.parse(text)));
          } catch (err) {
            reject(new EnrollError(502, `malformed enrollment response: ${(err as Error).message}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('enrollment timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}
