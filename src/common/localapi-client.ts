/**
 * Client of the agent's local API (HTTP over a Unix socket, see src/common/localapi-schema.ts).
 * Plain Node, no electron: the main process uses it, and it is tested against a fake agent.
 * Every answer is validated against the shared schema before anyone sees it.
 */
import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import http from 'node:http';
import {
  LOCALAPI_DEFAULT_SOCKET,
  LOCALAPI_WATCH_PATH,
  LocalApiErrorSchema,
  WatchEventSchema,
  localApiPath,
  parseLocalApiResponse,
  type LocalApiRequest,
  type LocalApiRequestName,
  type LocalApiResponse,
  type WatchEvent,
} from './localapi-schema.js';

export interface WatchHandlers {
  onEvent(event: WatchEvent): void;
  /** The stream failed or ended; the client reconnects by itself with backoff. */
  onError(err: Error): void;
}

export interface AgentClient {
  request<K extends LocalApiRequestName>(name: K, args: LocalApiRequest<K>): Promise<LocalApiResponse<K>>;
  /** Follows the watch stream until the returned function is called. */
  watch(handlers: WatchHandlers): () => void;
}

export interface AgentClientOptions {
  socketPath: string;
  /** Per request (not for the watch stream). Default 10 s. */
  timeoutMs?: number;
  /** Largest response body or watch line accepted. Default 4 MiB. */
  maxBytes?: number;
  /** Reconnect delays of the watch stream. Default 250 ms doubling up to 10 s. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /**
   * Uids the socket may belong to; anything else is refused before a byte is sent, so a socket
   * planted by another local user is never trusted with a request or believed about state.
   * Default {@link trustedOwnersFor}; `null` turns the check off.
   */
  trustedOwners?: readonly number[] | null;
}

/**
 * Who may own the agent's socket: root for the system agent's path; root or this user for any
 * other path (a demo or a development agent this user started).
 */
export function trustedOwnersFor(socketPath: string): number[] {
  const me = process.getuid?.();
  return socketPath === LOCALAPI_DEFAULT_SOCKET || me === undefined || me === 0 ? [0] : [0, me];
}

/** Refuses a socket that is not a socket, or not owned by one of `owners`. */
export async function checkSocketOwner(socketPath: string, owners: readonly number[]): Promise<void> {
  let st: Stats;
  try {
    st = await lstat(socketPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LocalApiCallError(`cannot reach the agent at ${socketPath}: ${code ?? (err as Error).message}`, undefined, code);
  }
  if (!st.isSocket()) throw new LocalApiCallError(`refusing ${socketPath}: not a socket`);
  if (!owners.includes(st.uid)) {
    throw new LocalApiCallError(`refusing ${socketPath}: owned by uid ${st.uid}, not by ${owners.map((u) => (u === 0 ? 'root' : `uid ${u}`)).join(' or ')}`, undefined, 'untrusted-socket');
  }
}

export class LocalApiCallError extends Error {
  override name = 'LocalApiCallError';
  constructor(
    message: string,
    readonly statusCode?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

function readBody(res: http.IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy(new LocalApiCallError(`agent response exceeds ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

export function createAgentClient(opts: AgentClientOptions): AgentClient {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
  const retryInitialMs = opts.retryInitialMs ?? 250;
  const retryMaxMs = opts.retryMaxMs ?? 10_000;
  const owners = opts.trustedOwners === undefined ? trustedOwnersFor(opts.socketPath) : opts.trustedOwners;
  const checkOwner = (): Promise<void> => (owners ? checkSocketOwner(opts.socketPath, owners) : Promise.resolve());

  async function post(path: string, body: string): Promise<{ status: number; text: string }> {
    await checkOwner();
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: opts.socketPath,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      req.setTimeout(timeoutMs, () => req.destroy(new LocalApiCallError(`agent did not answer in ${timeoutMs} ms`)));
      req.on('response', (res) => {
        readBody(res, maxBytes).then((text) => resolve({ status: res.statusCode ?? 0, text }), reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async function request<K extends LocalApiRequestName>(
    name: K,
    args: LocalApiRequest<K>,
  ): Promise<LocalApiResponse<K>> {
    const { status, text } = await post(localApiPath(name), JSON.stringify(args));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new LocalApiCallError(`agent sent invalid JSON for ${name} (HTTP ${status})`, status);
    }
    if (status !== 200) {
      const err = LocalApiErrorSchema.safeParse(json);
      if (err.success) throw new LocalApiCallError(err.data.error, status, err.data.code);
      throw new LocalApiCallError(`${name} failed with HTTP ${status}`, status);
    }
    return parseLocalApiResponse(name, json);
  }

  function watch(handlers: WatchHandlers): () => void {
    let stopped = false;
    let delay = retryInitialMs;
    let current: http.ClientRequest | undefined;
    let timer: NodeJS.Timeout | undefined;

    const retry = (err: Error): void => {
      if (stopped) return;
      handlers.onError(err);
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, retryMaxMs);
    };
    const connect = (): void => {
      if (stopped) return;
      checkOwner().then(open, retry);
    };
    const open = (): void => {
      if (stopped) return;
      let failed = false;
      const fail = (err: Error): void => {
        if (failed || stopped) return;
        failed = true;
        req.destroy();
        retry(err);
      };
      const req = http.request({
        socketPath: opts.socketPath,
        method: 'GET',
        path: LOCALAPI_WATCH_PATH,
        headers: { accept: 'application/x-ndjson' },
      });
      current = req;
      req.on('error', fail);
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          fail(new LocalApiCallError(`watch failed with HTTP ${res.statusCode ?? 0}`, res.statusCode));
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let nl = buf.indexOf('\n'); nl >= 0 && !failed; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) handleLine(line);
          }
          if (buf.length > maxBytes) fail(new LocalApiCallError(`watch event exceeds ${maxBytes} bytes`));
        });
        res.on('end', () => fail(new LocalApiCallError('agent closed the watch stream')));
        res.on('error', fail);
      });
      const handleLine = (line: string): void => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          fail(new LocalApiCallError('agent sent an invalid watch line'));
          return;
        }
        const ev = WatchEventSchema.safeParse(parsed);
        if (!ev.success) {
          fail(new LocalApiCallError(`agent sent an invalid watch event: ${ev.error.message}`));
          return;
        }
        delay = retryInitialMs;
        handlers.onEvent(ev.data);
      };
      req.end();
    };

    connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      current?.destroy();
    };
  }

  return { request, watch };
}
