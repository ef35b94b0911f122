import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/log.js';
import { LOGIN_PATHS, LoginTicketResponse } from '../../protocol/enroll-api.js';
import { postLoginApi } from './login-api.js';

export interface LoginParams {
  tenant: string;
  /** The enrollment service, HOST:PORT, as for token enrollment. */
  enroll: string;
  serverName: string;
  caPem: string;
  log: Logger;
  /**
   * Shows the login URL to the user. Default: the system browser, with the URL also logged for
   * headless machines. Tests pass a scripted browser.
   */
  openUrl?: (url: string) => void | Promise<void>;
  /** The base URL the browser reaches the enrollment service at; default https://<enroll>. */
  enrollUrl?: string;
  /** How long the user has to finish at the IdP. */
  timeoutMs?: number;
}

export type LoginTicket = LoginTicketResponse;

export class LoginError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LoginError';
  }
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/**
 * Interactive login as RFC 8252 has native apps do it: a one-shot HTTP listener on a random
 * loopback port, the system browser sent to the cloud (which sends it on to the tenant's SAML
 * IdP), and the browser brought back to the listener with a one-time code, exchanged here with
 * the PKCE verifier (RFC 7636 S256) for a login ticket. The password and the SAML assertion
 * stay between the browser, the IdP and the cloud; this process sees neither.
 */
export async function loginWithBrowser(p: LoginParams): Promise<LoginTicket> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier, 'ascii').digest('base64url');
  const state = randomBytes(24).toString('base64url');
  const listener = await listenLoopback();
  const redirect = `http://127.0.0.1:${listener.port}/callback`;
  try {
    const start = new URL(LOGIN_PATHS.start, p.enrollUrl ?? `https://${p.enroll}`);
    for (const [k, v] of Object.entries({ tenant: p.tenant, redirect, state, code_challenge: challenge, code_challenge_method: 'S256' })) start.searchParams.set(k, v);
    const code = listener.waitForCode(state, p.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const opened = Promise.resolve().then(() => (p.openUrl ?? openSystemBrowser(p.log))(start.toString()));
    // A browser that fails outright fails the login now rather than at the timeout.
    await Promise.race([code, opened.then(() => code)]);
    const ticket = await postLoginApi(p, LOGIN_PATHS.token, { code: await code, codeVerifier: verifier, redirect }, LoginTicketResponse);
    p.log.info({ tenant: ticket.tenant, user: ticket.user }, 'logged in');
    return ticket;
  } finally {
    listener.close();
  }
}

interface LoopbackListener {
  port: number;
  waitForCode(state: string, timeoutMs: number): Promise<string>;
  close(): void;
}

/** The redirect target: answers one callback, on 127.0.0.1 only (never a wildcard address). */
async function listenLoopback(): Promise<LoopbackListener> {
  let onCallback: (q: URLSearchParams) => string = () => 'not waiting for a login';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const message = onCallback(url.searchParams);
    // no-referrer: the code in this URL must not travel on from the page.
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', connection: 'close' });
    res.end(message);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
    waitForCode(state, timeoutMs) {
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new LoginError(`login not completed within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
        timer.unref();
        onCallback = (q) => {
          onCallback = () => 'this login is already finished';
          clearTimeout(timer);
          // A callback without our state was not started by us (RFC 6749 §10.12): refuse it.
          if (q.get('state') !== state) {
            reject(new LoginError('login callback with a wrong state: refused'));
            return 'Login refused: this response does not belong to the login in progress.';
          }
          const code = q.get('code');
          if (!code) {
            const why = (q.get('error_description') ?? q.get('error') ?? 'no code').slice(0, 200);
            reject(new LoginError(`login failed: ${why}`));
            return `Login failed: ${why}`;
          }
          resolve(code);
          return 'You are signed in. You can close this window.';
        };
      });
    },
  };
}

/** Opens the URL in the user's browser; the URL is logged too, for machines without one. */
export function openSystemBrowser(log: Logger): (url: string) => void {
  return (url) => {
    log.info({ url }, 'open this URL in a browser to log in');
    const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['rundll32', ['url.dll,FileProtocolHandler', url]] : ['xdg-open', [url]];
    try {
      const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
      child.on('error', (err) => log.warn({ err: err.message }, 'could not start a browser: open the logged URL by hand'));
      child.unref();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not start a browser: open the logged URL by hand');
    }
  };
}
