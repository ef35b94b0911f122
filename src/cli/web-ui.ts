import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import type { Logger } from '../common/log.js';
import { isUiRequestName } from '../common/bridge.js';
import { LocalApiCallError, createAgentClient } from '../common/localapi-client.js';
import { buildRenderer, PROJECT_ROOT } from '../../scripts/build-renderer.js';

export interface WebUi {
  url: string;
  close(): Promise<void>;
}

/** The page's CSP: the Electron one, with fetch/EventSource allowed to this same origin only. */
function csp(): string {
  return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

/**
 * Serves the tray's React UI on loopback for a browser (`zcc demo --ui`), relaying to the
 * agent's local API. Every path lives under a random token, the Host header must be this
 * listener (no DNS rebinding), and cross-origin requests are refused: the token is the
 * capability, handed out only in the READY line.
 */
export async function startWebUi(opts: { listen: { host: string; port: number }; socketPath: string; outDir: string; log: Logger }): Promise<WebUi> {
  const ui = await buildRenderer({ outDir: join(opts.outDir, 'renderer') });
  const bridge = await esbuild.build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [join(PROJECT_ROOT, 'src', 'renderer', 'web-bridge.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    minify: true,
    logLevel: 'silent',
  });
  const files: Record<string, { type: string; body: Buffer }> = {
    'app.js': { type: 'text/javascript', body: await readFile(join(ui.outDir, 'app.js')) },
    'app.css': { type: 'text/css', body: await readFile(join(ui.outDir, 'app.css')) },
    'bridge.js': { type: 'text/javascript', body: Buffer.from(bridge.outputFiles[0]!.contents) },
  };
  const html = (await readFile(join(ui.outDir, 'index.html'), 'utf8'))
    .replace(/<meta\s+http-equiv="Content-Security-Policy"[^>]*>/s, '')
    // No favicon request leaves the token path (it would only 404).
    .replace('<title>', '<link rel="icon" href="data:," />\n    <title>')
    .replace('<script defer src="./app.js"></script>', '<script defer src="./bridge.js"></script>\n    <script defer src="./app.js"></script>');
  const token = randomBytes(18).toString('base64url');
  const prefix = `/${token}/`;
  const agent = createAgentClient({ socketPath: opts.socketPath });
  let self = '';

  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string | Buffer): void => {
      res.writeHead(status, { 'content-type': type, 'content-security-policy': csp(), 'x-content-type-options': 'nosniff', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      res.end(body);
    };
    if (req.headers.host !== self) return send(421, 'text/plain', 'wrong host\n');
    if (req.headers.origin !== undefined && req.headers.origin !== `http://${self}`) return send(403, 'text/plain', 'cross-origin requests are refused\n');
    const url = req.url ?? '/';
    if (!url.startsWith(prefix)) return send(404, 'text/plain', 'not found\n');
    const rest = url.slice(prefix.length);
    if (req.method === 'GET' && (rest === '' || rest === 'index.html')) return send(200, 'text/html; charset=utf-8', html);
    const file = files[rest];
    if (req.method === 'GET' && file) return send(200, file.type, file.body);
    if (req.method === 'GET' && rest === 'api/watch') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      const stop = agent.watch({
        onEvent: (e) => res.write(`data: ${JSON.stringify(e)}\n\n`),
        onError: (err) => opts.log.debug({ err: err.message }, 'web UI: agent watch interrupted'),
      });
      req.once('close', stop);
      return;
    }
    const name = rest.startsWith('api/request/') ? rest.slice('api/request/'.length) : '';
    // Only what the UI may ask (the Electron main process allows the same list).
    if (req.method === 'POST' && isUiRequestName(name)) {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
        if (body.length > 16_384) req.destroy();
      });
      req.on('end', () => {
        let args: unknown;
        try {
          args = JSON.parse(body || '{}');
        } catch {
          return send(400, 'application/json', JSON.stringify({ error: 'body is not JSON' }));
        }
        // The local API validates the arguments against the shared schema.
        (agent.request as (n: string, a: unknown) => Promise<unknown>)(name, args).then(
          (out) => send(200, 'application/json', JSON.stringify(out)),
          // The agent's own refusals (400 bad arguments, 409 managed setting, …) pass through.
          (err: Error) =>
            err instanceof LocalApiCallError && err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500
              ? send(err.statusCode, 'application/json', JSON.stringify({ error: err.message, ...(err.code ? { code: err.code } : {}) }))
              : send(502, 'application/json', JSON.stringify({ error: err.message })),
        );
      });
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  self = `${addr.address}:${addr.port}`;
  return {
    url: `http://${self}${prefix}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
