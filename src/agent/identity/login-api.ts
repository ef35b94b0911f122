import type { z } from 'zod';
import { postCloudJson } from '../../protocol/enroll-api.js';
import type { TlsIdentity } from '../../protocol/tls.js';

/**
 * POSTs JSON to the cloud's login API (postCloudJson: TLS 1.3, cloud CA pinned, answer checked
 * against `schema`); `clientIdentity` is presented as TLS client certificate (refresh).
 */
export function postLoginApi<T extends z.ZodType>(
  p: { enroll: string; serverName: string; caPem: string; clientIdentity?: TlsIdentity },
  path: string,
  body: unknown,
  schema: T,
): Promise<z.infer<T>> {
  return postCloudJson({ address: p.enroll, serverName: p.serverName, caPem: p.caPem, clientIdentity: p.clientIdentity }, path, body, schema, path);
}
