/**
 * Pure security policy for the UI window (no electron import): the Content-Security-Policy and
 * the rule "only the app's own file:// bundle may be loaded".
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The renderer needs nothing but its own script, style and images; no network at all. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-src 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  'trusted-types',
].join('; ');

/**
 * True when `url` is a file: URL of a file inside `bundleDir` (the renderer's build output).
 * Everything else — http(s), ws, data, blob, other files, `..` escapes — is refused.
 */
export function isAppBundleUrl(url: string, bundleDir: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'file:' || (parsed.host !== '' && parsed.host !== 'localhost')) return false;
  let file: string;
  try {
    file = fileURLToPath(parsed);
  } catch {
    return false;
  }
  const rel = path.relative(path.resolve(bundleDir), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export type ResponseHeaders = Record<string, string | string[]>;

/** Response headers with our CSP replacing any the response carried (any casing). */
export function withCsp(headers: ResponseHeaders | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (k.toLowerCase() === 'content-security-policy') continue;
    out[k] = Array.isArray(v) ? v : [v];
  }
  out['Content-Security-Policy'] = [CONTENT_SECURITY_POLICY];
  out['X-Content-Type-Options'] = ['nosniff'];
  return out;
}

/** Links the UI may hand to the system browser (sign-in pages): http(s) only. */
export function isExternalBrowserUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === 'https:' || protocol === 'http:';
  } catch {
    return false;
  }
}
