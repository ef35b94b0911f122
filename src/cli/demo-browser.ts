import http from 'node:http';
import https from 'node:https';

export interface Page {
  url: string;
  status: number;
  location?: string;
  body: string;
}

export interface HtmlForm {
  action: string;
  fields: Record<string, string>;
}

/**
 * A scripted browser for the SAML login, standing in for the demo user at the demo IdP (the
 * demo signs its agent in with it; tests drive logins with it): plain GETs and form POSTs over real sockets (HTTPS with
 * the cloud's CA pinned, HTTP for the agent's loopback callback), no cookies, no script — it
 * submits the IdP's auto-post form the way a browser running its one-line script would. It
 * records the secrets it carried, so tests can check none of them reached a log.
 */
export class ScriptedBrowser {
  readonly seen = { samlResponses: [] as string[], codes: [] as string[] };

  constructor(private readonly caPem: string) {}

  get(url: string): Promise<Page> {
    return this.request(url, 'GET');
  }

  postForm(url: string, fields: Record<string, string>): Promise<Page> {
    if (fields.SAMLResponse) this.seen.samlResponses.push(fields.SAMLResponse);
    return this.request(url, 'POST', new URLSearchParams(fields).toString());
  }

  /** GET start → redirect to the IdP → login form → credentials → the auto-submit form (not yet posted). */
  async signInAtIdp(startUrl: string, user: string, password: string): Promise<HtmlForm> {
    const start = await this.get(startUrl);
    if (start.status !== 302 || !start.location) throw new Error(`login start answered ${start.status}: ${start.body}`);
    const loginPage = await this.get(start.location);
    if (loginPage.status !== 200) throw new Error(`IdP answered ${loginPage.status}: ${loginPage.body}`);
    const form = parseForm(loginPage);
    const autoPost = await this.postForm(form.action, { ...form.fields, user, password });
    if (autoPost.status !== 200) throw new Error(`IdP sign-in answered ${autoPost.status}`);
    return parseForm(autoPost);
  }

  /** The whole login as a user's browser does it, ending at the agent's loopback callback. */
  async login(startUrl: string, user: string, password: string): Promise<Page> {
    const autoPost = await this.signInAtIdp(startUrl, user, password);
    const acs = await this.postForm(autoPost.action, autoPost.fields);
    if (acs.status !== 303 || !acs.location) throw new Error(`ACS answered ${acs.status}: ${acs.body}`);
    const code = new URL(acs.location).searchParams.get('code');
    if (code) this.seen.codes.push(code);
    return this.get(acs.location);
  }

  private request(url: string, method: string, body?: string): Promise<Page> {
    const u = new URL(url);
    const headers: Record<string, string | number> = body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) };
    const options = { method, headers, agent: false as const };
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const location = res.headers.location ? new URL(res.headers.location, url).toString() : undefined;
          resolve({ url, status: res.statusCode ?? 0, location, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      };
      const req =
        u.protocol === 'https:'
          ? https.request(u, { ...options, ca: [this.caPem], minVersion: 'TLSv1.3' }, onResponse)
          : http.request(u, options, onResponse);
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** The first form of a page: its absolute action and its hidden inputs (entities decoded). */
export function parseForm(page: Page): HtmlForm {
  const action = /<form method="post" action="([^"]*)"/.exec(page.body)?.[1];
  if (action === undefined) throw new Error(`no form on ${page.url} (status ${page.status})`);
  const fields: Record<string, string> = {};
  for (const m of page.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = unescapeHtml(m[2]!);
  return { action: new URL(unescapeHtml(action), page.url).toString(), fields };
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
