import { chmod, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../../common/log.js';
import {
  isLocalApiRequestName,
  LOCALAPI_BASE_PATH,
  LOCALAPI_WATCH_PATH,
  LocalApiRequests,
  type AgentStatus,
  type LocalApiHandlers,
  type WatchEvent,
} from '../../common/localapi-schema.js';
import { callerRights, type CallerRights, type RightsPolicy } from './caller-rights.js';

/** Requests anyone connected may make; everything else changes state and needs read-write. */
const READ_ONLY = new Set(['status', 'settings', 'diagnostics']);
const MAX_BODY = 16 << 10;

export interface LocalApiOptions extends RightsPolicy {
  socketPath: string;
  handlers: LocalApiHandlers;
  status: () => AgentStatus;
  /** Subscribes to "status may have changed"; returns the unsubscribe function. */
  subscribe: (onChange: () => void) => () => void;
  log: Logger;
}

/**
 * The agent's local API (Tailscale's LocalAPI pattern): HTTP over a Unix socket, caller rights
 * from peer credentials, and any request carrying Origin or Referer refused, so a web page can
 * never drive the agent even through a local proxy.
 */
export class LocalApiServer {
  private readonly server: http.Server;
  private readonly rights = new WeakMap<Socket, { rights: CallerRights; uid: number }>();

  constructor(private readonly opts: LocalApiOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      try {
        this.rights.set(socket, callerRights(socket, opts));
      } catch (err) {
        opts.log.warn({ err: (err as Error).message }, 'local API: cannot read peer credentials; closing');
        socket.destroy();
      }
    });
  }

  async listen(): Promise<void> {
    await mkdir(dirname(this.opts.socketPath), { recursive: true, mode: 0o755 });
    await rm(this.opts.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.socketPath, () => resolve());
    });
    // Anyone may connect; what they may do is decided per request from peer credentials.
    await chmod(this.opts.socketPath, 0o666);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    await rm(this.opts.socketPath, { force: true });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const caller = this.rights.get(req.socket);
    const fail = (status: number, error: string, code?: string): void => {
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error, code }));
    };
    if (!caller) return fail(403, 'unknown caller', 'forbidden');
    if (req.headers.origin !== undefined || req.headers.referer !== undefined) {
      this.opts.log.warn({ uid: caller.uid, url: req.url }, 'local API: refused a request with Origin/Referer (browser)');
      return fail(403, 'requests from web pages are refused', 'browser-origin');
    }
    if (req.method === 'GET' && req.url === LOCALAPI_WATCH_PATH) return this.watch(res);
    const name = req.method === 'POST' && req.url?.startsWith(`${LOCALAPI_BASE_PATH}/`) ? req.url.slice(LOCALAPI_BASE_PATH.length + 1) : undefined;
    if (!isLocalApiRequestName(name)) return fail(404, `no such request ${req.method} ${req.url}`, 'not-found');
    if (!READ_ONLY.has(name) && caller.rights !== 'read-write') {
      this.opts.log.warn({ uid: caller.uid, request: name }, 'local API: read-only caller tried to change state');
      return fail(403, `${name} needs root or the operator group`, 'forbidden');
    }
    let args: unknown;
    try {
      args = JSON.parse((await readBody(req)) || '{}');
    } catch (err) {
      return fail(400, `body: ${(err as Error).message}`, 'bad-request');
    }
    const parsed = LocalApiRequests[name].request.safeParse(args);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      return fail(400, `${name}: ${i?.path.join('.') || '(body)'}: ${i?.message ?? 'invalid'}`, 'bad-request');
    }
    try {
      const handler = this.opts.handlers[name] as (a: unknown) => Promise<unknown>;
      const out = await handler(parsed.data);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    } catch (err) {
      const e = err as Error & { code?: string; status?: number };
      fail(e.status ?? 409, e.message, e.code ?? 'failed');
    }
  }

  /** Newline-delimited JSON: a snapshot first, then the full status after every change. */
  private watch(res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const send = (e: WatchEvent): void => void res.write(`${JSON.stringify(e)}\n`);
    send({ type: 'snapshot', status: this.opts.status() });
    let pending: NodeJS.Timeout | null = null;
    const unsubscribe = this.opts.subscribe(() => {
      // Coalesce bursts (a reconnect changes several fields at once) into one event.
      pending ??= setTimeout(() => {
        pending = null;
        send({ type: 'changed', status: this.opts.status() });
      }, 50);
    });
    res.once('close', () => {
      unsubscribe();
      if (pending) clearTimeout(pending);
    });
  }
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > MAX_BODY) throw new Error(`larger than ${MAX_BODY} bytes`);
  }
  return body;
}
