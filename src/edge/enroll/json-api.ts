import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';

const MAX_BODY = 64 << 10;

/** A client error with the status to answer and a message that says what and where. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads a bounded JSON body and validates it; failures are ApiErrors naming the field. */
export async function readJson<T extends z.ZodType>(req: IncomingMessage, schema: T): Promise<z.infer<T>> {
  if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw new ApiError(415, 'expected content-type application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, `body exceeds ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new ApiError(400, `body is not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ApiError(400, `${i?.path.join('.') || '(body)'}: ${i?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
