import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { attr, text } from './assertion.js';

const STYLE = 'body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}label,input,button{display:block;width:100%;margin:.4rem 0}.err{color:#b00}';

/** Headers every IdP page gets: never cached, never framed (clickjacking), no Referer onward. */
function send(res: ServerResponse, status: number, html: string, csp: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'content-security-policy': csp,
  });
  res.end(html);
}

/** The login form: plain HTML, no script, posting back to this IdP only. */
export function sendLoginPage(res: ServerResponse, p: { status?: number; action: string; request: string; idpName: string; user?: string; error?: string }): void {
  const html =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in — ${text(p.idpName)}</title><style>${STYLE}</style></head><body>` +
    `<h1>Sign in</h1><p>${text(p.idpName)}</p>` +
    (p.error ? `<p class="err" role="alert">${text(p.error)}</p>` : '') +
    `<form method="post" action="${attr(p.action)}">` +
    `<input type="hidden" name="request" value="${attr(p.request)}">` +
    `<label for="user">User</label><input id="user" name="user" autocomplete="username" required value="${attr(p.user ?? '')}">` +
    `<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>` +
    `<button type="submit">Sign in</button></form></body></html>`;
  send(res, p.status ?? 200, html, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
}

/**
 * The SAML HTTP-POST binding: a form the browser submits to the SP's ACS by itself (one inline
 * script, allowed by its nonce), with a button for browsers that run no script.
 */
export function sendAutoPost(res: ServerResponse, p: { acsUrl: string; samlResponse: string; relayState?: string }): void {
  const nonce = randomBytes(16).toString('base64');
  const html =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in…</title></head><body>` +
    `<form method="post" action="${attr(p.acsUrl)}">` +
    `<input type="hidden" name="SAMLResponse" value="${attr(p.samlResponse)}">` +
    (p.relayState !== undefined ? `<input type="hidden" name="RelayState" value="${attr(p.relayState)}">` : '') +
    `<noscript><button type="submit">Continue</button></noscript></form>` +
    `<script nonce="${nonce}">document.forms[0].submit()</script></body></html>`;
  // Browsers apply form-action to the redirects after the POST as well, and the SP's ACS sends
  // the browser on to the agent's RFC 8252 loopback callback (http://127.0.0.1:PORT/callback):
  // without it here Chromium blocks the sign-in at the ACS.
  send(res, 200, html, `default-src 'none'; script-src 'nonce-${nonce}'; form-action ${new URL(p.acsUrl).origin} http://127.0.0.1:*; frame-ancestors 'none'; base-uri 'none'`);
}

/** An error page: the user sees what went wrong, in words. */
export function sendErrorPage(res: ServerResponse, status: number, message: string): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title><style>${STYLE}</style></head><body><h1>Sign-in error</h1><p class="err">${text(message)}</p></body></html>`;
  send(res, status, html, "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
}
