import { existsSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';
import { waitUntil } from '../helpers/log-capture.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/ui/demo-ui.test.ts SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium)`);

describe.skipIf(!haveChromium)('zcc demo UI in a browser (no Electron)', () => {
  let demo: ZccProcess;
  let browser: Browser;
  let url: string;

  beforeAll(async () => {
    demo = await spawnZcc(['demo', '--socks', '127.0.0.1:0', '--http-proxy', '127.0.0.1:0', '--ui', '127.0.0.1:0'], { ZCC_NO_ELECTRON: '1' }, 90_000);
    url = String(demo.ready.ui);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.stop('SIGTERM');
  });

  it('shows the live tenant, its apps and follows changes pushed by the agent', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    const tenant = page.getByRole('region', { name: /Demo Corp/ });
    await tenant.waitFor({ timeout: 15_000 });
    expect(await tenant.getByText('alice@demo.internal').count()).toBeGreaterThan(0);
    for (const app of ['Intranet', 'Echo', 'Apps']) expect(await tenant.getByRole('rowheader', { name: app }).count()).toBe(1);
    // Turn the tenant off through the agent's local API (as the tray menu would) and see the page follow.
    const off = await fetch(`${url}api/request/setTenantEnabled`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'demo', enabled: false }) });
    expect(off.status).toBe(200);
    await waitUntil(async () => (await tenant.textContent())?.toLowerCase().includes('disconnected'), 10_000, 'page shows disconnected');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('answers only under its secret path, to its own Host, and refuses cross-origin calls', async () => {
    const origin = new URL(url).origin;
    expect((await fetch(`${origin}/`)).status).toBe(404);
    expect((await fetch(`${origin}/wrong-token/api/request/status`, { method: 'POST', body: '{}' })).status).toBe(404);
    const crossOrigin = await fetch(`${url}api/request/status`, { method: 'POST', body: '{}', headers: { origin: 'http://evil.example' } });
    expect(crossOrigin.status).toBe(403);
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
    const rebound = await new Promise<number>((resolve, reject) => {
      const u = new URL(url);
      http.get({ host: u.hostname, port: u.port, path: u.pathname, headers: { host: 'evil.example' } }, (res) => resolve(res.statusCode ?? 0)).on('error', reject);
    });
    expect(rebound).toBe(421);
  });
});
