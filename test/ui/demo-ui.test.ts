/**
 * The renderer against a real agent from `zcc demo` (web UI on loopback, no Electron), in
 * Debian's Chromium through playwright-core: the demo tenant Connected with 100.64 synthetic
 * IPs, re-authentication through the demo IdP, the Safe Mode banner while DR is on, the
 * tenant switch, the settings and diagnostics views. Screenshots of every state go to
 * test-artifacts/ui/demo-*.png.
 */
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/log-capture.js';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';
import { CHROMIUM, SCREENSHOT_DIR, hasChromium, launchChromium, screenshot } from './renderer-harness.js';

if (!hasChromium) console.warn(`test/ui/demo-ui.test.ts SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium)`);

const ZCC = join(import.meta.dirname, '..', '..', 'bin', 'zcc');
const run = promisify(execFile);

/** Runs a command line the demo printed (`zcc dr record … > FILE`) with this checkout's bin/zcc. */
async function runPrinted(command: string): Promise<void> {
  if (!command.startsWith('zcc ')) throw new Error(`not a zcc command: ${command}`);
  await run('sh', ['-c', `"${process.execPath}" "${ZCC}" ${command.slice('zcc '.length)}`]);
}

interface DemoLogin {
  tenant: string;
  user: string;
  password: string;
}

describe.skipIf(!hasChromium)('zcc demo UI in a browser (no Electron)', { timeout: 120_000 }, () => {
  let demo: ZccProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  const errors: string[] = [];
  /** Requests of the window itself to anything but its own server (the sign-in tab is another page). */
  const foreign: string[] = [];

  beforeAll(async () => {
    demo = await spawnZcc(
      ['demo', '--dr', '--dns', '127.0.0.1:0', '--socks', '127.0.0.1:0', '--http-proxy', '127.0.0.1:0', '--ui', '127.0.0.1:0'],
      { ZCC_NO_ELECTRON: '1' },
      90_000,
    );
    url = String(demo.ready.ui);
    browser = await launchChromium();
    // The sign-in pages are HTTPS under the demo cloud's own CA. This browser stands in for the
    // user's (who would have that CA installed); the agent's own TLS pinning is not involved.
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 760, height: 900 }, colorScheme: 'light' });
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      if (new URL(r.url()).origin !== new URL(url).origin) foreign.push(r.url());
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.stop('SIGTERM');
  });

  const tenant = () => page.getByRole('region', { name: 'Demo Corp' });

  it('shows the demo tenant Connected, with its apps and their 100.64 synthetic IPs', async () => {
    // Resolving app names through the agent's DNS server hands out the synthetic IPs.
    const resolver = new Resolver();
    const [host, port] = String(demo.ready.dns).split(':');
    resolver.setServers([`${host}:${port}`]);
    for (const name of ['intranet.demo.internal', 'echo.demo.internal', 'wiki.apps.demo.internal']) {
      expect((await resolver.resolve4(name))[0]).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./);
    }
    await page.goto(url);
    await tenant().waitFor({ timeout: 15_000 });
    await tenant().getByText('Connection: Connected').waitFor();
    expect(await tenant().getByText('alice@demo.internal').count()).toBeGreaterThan(0);
    for (const app of ['Intranet', 'Echo', 'Apps']) expect(await tenant().getByRole('rowheader', { name: app }).count()).toBe(1);
    // The status is pushed: the addresses show up without a reload once the agent lists them.
    const table = tenant().getByRole('table', { name: 'App segments of Demo Corp' });
    await waitUntil(async () => ((await table.innerText()).match(/100\.\d+\.\d+\.\d+/g) ?? []).length >= 3, 15_000, 'three synthetic IPs in the table');
    expect(await table.getByRole('row', { name: /^Intranet/ }).innerText()).toMatch(/intranet\.demo\.internal[^\n]*\n[^\n]*\n\s*100\.64\.\d+\.\d+/);
    await screenshot(page, 'demo-connected');
    // Just the window's content, as the README shows it (docs/images/tray-ui.png).
    await page.locator('main').screenshot({ path: join(SCREENSHOT_DIR, 'demo-window.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'demo-connected-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('re-authenticates through the demo IdP: login page, ACS, loopback callback, new expiry', async () => {
    const login = demo.ready.login as DemoLogin | undefined;
    expect(login, 'READY carries the demo login {tenant, user, password}').toBeDefined();
    if (!login) return;
    const expiry = tenant().locator('dd time').last();
    const before = await expiry.getAttribute('datetime');
    expect(before).toBeTruthy();

    const [popup] = await Promise.all([
      context.waitForEvent('page', { timeout: 15_000 }),
      tenant().getByRole('button', { name: 'Re-authenticate Demo Corp' }).click(),
    ]);
    await tenant().getByRole('status').filter({ hasText: 'Waiting for sign-in' }).waitFor();
    await screenshot(page, 'demo-reauth-waiting');

    // The demo IdP's login form (src/edge/idp/pages.ts), over HTTPS.
    const trail: string[] = [];
    popup.on('framenavigated', (f) => f === popup.mainFrame() && trail.push(`nav ${f.url()}`));
    popup.on('requestfailed', (r) => trail.push(`failed ${r.url()} ${r.failure()?.errorText}`));
    popup.on('response', (r) => trail.push(`${r.status()} ${r.url()}`));
    popup.on('close', () => trail.push('closed'));
    await popup.getByLabel('User').waitFor({ timeout: 15_000 });
    expect(popup.url()).toMatch(/^https:\/\//);
    await popup.getByLabel('User').fill(login.user);
    await popup.getByLabel('Password').fill(login.password);
    await screenshot(popup, 'demo-idp-login');
    await popup.getByRole('button', { name: 'Sign in' }).click();
    // It auto-posts the assertion to the cloud's ACS, which sends the browser to the agent's loopback callback.
    await popup.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/, { timeout: 20_000 }).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${trail.join('\n')}`);
    });
    await screenshot(popup, 'demo-login-callback');

    await tenant().getByRole('status').filter({ hasText: /^Signed in/ }).waitFor({ timeout: 20_000 });
    const after = await expiry.getAttribute('datetime');
    expect(after).toBeTruthy();
    expect(Date.parse(after!)).toBeGreaterThan(Date.parse(before!));
    expect(await tenant().getByText('Sign-in required', { exact: false }).count()).toBe(0);
    await tenant().getByText('Connection: Connected').waitFor();
    await screenshot(page, 'demo-reauth-done');
    await popup.close();
  });

  it('raises the Safe Mode banner while the DR record is on, and drops it when it is off', async () => {
    const dr = demo.ready.dr as { trigger: string; end: string };
    const banner = page.getByRole('alert').filter({ hasText: 'Safe mode' });
    expect(await banner.count()).toBe(0);
    await runPrinted(dr.trigger);
    await banner.waitFor({ timeout: 60_000 });
    expect(await banner.innerText()).toContain('Safe mode for Demo Corp: disaster recovery is active');
    await tenant().getByText(/^Disaster recovery active since/).waitFor();
    await tenant().getByText('Connection: Safe mode').waitFor({ timeout: 30_000 });
    await screenshot(page, 'demo-safe-mode');
    await runPrinted(dr.end);
    await banner.waitFor({ state: 'detached', timeout: 60_000 });
    await tenant().getByText('Connection: Connected').waitFor({ timeout: 30_000 });
  });

  it('turns the tenant off and on with its switch', async () => {
    const toggle = tenant().getByRole('switch', { name: 'Demo Corp Tunnel' });
    expect(await toggle.getAttribute('aria-checked')).toBe('true');
    await toggle.click();
    await tenant().getByText('Connection: Disconnected').waitFor({ timeout: 15_000 });
    expect(await toggle.getAttribute('aria-checked')).toBe('false');
    await screenshot(page, 'demo-tenant-off');
    await toggle.focus();
    await page.keyboard.press('Space');
    await tenant().getByText('Connection: Connected').waitFor({ timeout: 30_000 });
  });

  it('shows the agent settings and diagnostics, changes a setting and exports', async () => {
    await page.getByRole('tab', { name: 'Settings' }).click();
    const level = page.getByRole('combobox', { name: 'logging.level' });
    await level.waitFor();
    await level.selectOption('debug');
    await page.getByRole('listitem').filter({ hasText: 'logging.level' }).getByText('Saved.').waitFor();
    await screenshot(page, 'demo-settings');
    await level.selectOption('info');
    await page.getByRole('listitem').filter({ hasText: 'logging.level' }).getByText('Saved.').waitFor();

    await page.getByRole('tab', { name: 'Diagnostics' }).click();
    const panel = page.getByRole('tabpanel', { name: 'Diagnostics' });
    await panel.getByRole('table', { name: 'Recent log lines' }).waitFor();
    expect(await panel.getByRole('definition').first().innerText()).toMatch(/^\d+\.\d+\.\d+/);
    await panel.getByRole('button', { name: 'Export diagnostics' }).click();
    await panel.getByRole('status').filter({ hasText: /^Diagnostics saved to \/\S+/ }).waitFor({ timeout: 15_000 });
    await screenshot(page, 'demo-diagnostics');
    await page.getByRole('tab', { name: 'Status' }).click();
    expect(errors).toEqual([]);
    expect(foreign).toEqual([]);
  });

  it('answers only under its secret path, to its own Host, and refuses cross-origin calls and tenant changes', async () => {
    const origin = new URL(url).origin;
    expect((await fetch(`${origin}/`)).status).toBe(404);
    expect((await fetch(`${origin}/wrong-token/api/request/status`, { method: 'POST', body: '{}' })).status).toBe(404);
    const crossOrigin = await fetch(`${url}api/request/status`, { method: 'POST', body: '{}', headers: { origin: 'http://evil.example' } });
    expect(crossOrigin.status).toBe(403);
    // The UI adds and removes no tenants: those requests are not relayed at all.
    expect((await fetch(`${url}api/request/removeTenant`, { method: 'POST', body: JSON.stringify({ tenant: 'demo' }) })).status).toBe(404);
    // The agent's own refusals reach the page with their status and reason.
    const refused = await fetch(`${url}api/request/setSetting`, { method: 'POST', body: JSON.stringify({ key: 'dns.poolCidr', value: 'nonsense' }) });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toContain('dns.poolCidr');
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
    const rebound = await new Promise<number>((resolve, reject) => {
      const u = new URL(url);
      http.get({ host: u.hostname, port: u.port, path: u.pathname, headers: { host: 'evil.example' } }, (res) => resolve(res.statusCode ?? 0)).on('error', reject);
    });
    expect(rebound).toBe(421);
  });
});
