import https from 'node:https';
import type { z } from 'zod';
import { EnrollError } from '../../protocol/enroll-api.js';
import { parseHostPort, pinnedHttpsOptions, type TlsIdentity } from '../../protocol/tls.js';

/**
 * POSTs JSON to the cloud's login API over TLS 1.3 with the cloud CA pinned and validates the
 * answer against `schema`; `clientIdentity` is presented as TLS client certificate (refresh).
 * Bodies carry one-time secrets, so neither they nor the answers are ever logged here.
 */
export function postLoginApi<T extends z.ZodType>(
  p: { enroll: string; serverName: string; caPem: string; clientIdentity?: TlsIdentity },
  path: string,
  body: unknown,
  schema: T,
): Promise<z.infer<T>> {
  const { host, port } = parseHostPort(p.enroll, 'enrollment address');
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        ...pinnedHttpsOptions(p.caPem),
        ...(p.clientIdentity ? { key: p.clientIdentity.keyPem, cert: p.clientIdentity.certPem } : {}),
        // A fresh connection per call: a pooled one could carry another identity's certificate.
        agent: false,
        host,
        port,
        servername: p.serverName,
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
          if (res.statusCode !== 200) return reject(new EnrollError(res.statusCode ?? 0, `${path} refused (${res.statusCode}): ${errorOf(text)}`));
          const parsed = schema.safeParse(safeJson(text));
          if (!parsed.success) return reject(new EnrollError(502, `${path}: malformed answer`));
          resolve(parsed.data);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorOf(text: string): string {
  const e = (safeJson(text) as { error?: unknown } | undefined)?.error;
  return typeof e === 'string' ? e.slice(0, 300) : text.slice(0, 300);
}
