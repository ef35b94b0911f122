/**
 * Renders the real renderer bundle in real Chromium (playwright-core, system /usr/bin/chromium)
 * with a fake `window.zcc`, served from 127.0.0.1 with the main process's CSP header. Skips,
 * loudly, when Chromium is not installed (`apt-get install -y chromium`).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, buildRenderer } from '../../scripts/build-renderer.js';
import { CONTENT_SECURITY_POLICY } from '../../src/main/security.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`test/ui/renderer.test.ts SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium)`);
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

describe.skipIf(!hasChromium)('renderer in Chromium', () => {
  let tmp: string;
  /** Kept after the run for humans to look at; ZCC_UI_SCREENSHOTS picks the directory. */
  let shotsDir: string;
  let server: http.Server;
  let baseUrl: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const foreignRequests: string[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'zcc-ui-'));
    shotsDir = process.env.ZCC_UI_SCREENSHOTS ?? (await mkdtemp(path.join(os.tmpdir(), 'zcc-ui-shots-')));
    await mkdir(shotsDir, { recursive: true });
    const { outDir } = await buildRenderer({ outDir: path.join(tmp, 'renderer') });
    await esbuild.build({
      entryPoints: [path.join(PROJECT_ROOT, 'test', 'ui', 'fake-bridge.ts')],
      outfile: path.join(outDir, 'fake-bridge.js'),
      bundle: true,
      format: 'iife',
      target: 'chrome120',
      logLevel: 'silent',
    });
    server = http.createServer((req, res) => {
      // Chromium asks for a favicon on its own; the Electron window never does.
      if (req.url === '/favicon.ico') return void res.writeHead(204).end();
      const name = (req.url ?? '/').split('?')[0] === '/' ? '/index.html' : (req.url ?? '').split('?')[0];
      const file = path.join(outDir, path.normalize(name ?? '').replace(/^([/\\]|\.\.)+/, ''));
      readFile(file).then(
        (body) => {
          const out = name === '/index.html'
            ? body.toString('utf8').replace('<script defer src="./app.js">', '<script src="./fake-bridge.js"></script>\n    $&')
            : body;
          res.writeHead(200, {
            'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
            'content-security-policy': CONTENT_SECURITY_POLICY,
          });
          res.end(out);
        },
        () => {
          res.writeHead(404).end();
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 720, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().startsWith(baseUrl)) foreignRequests.push(r.url());
    });
    await page.goto(`${baseUrl}/`);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('renders each tenant as a labelled region with its state and details', async () => {
    await expect.poll(() => page.getByRole('heading', { level: 1, name: 'zcc' }).count()).toBe(1);
    const acme = page.getByRole('region', { name: 'Acme Corp' });
    await acme.waitFor();
    expect(await acme.getByText('Connection: Connected').count()).toBe(1);
    expect(await acme.getByRole('definition').allInnerTexts()).toEqual(
      expect.arrayContaining(['ada@acme.test', 'edge-1.acme.test:443', '5.1 MiB', '20.0 KiB']),
    );
    const globex = page.getByRole('region', { name: 'Globex' });
    expect(await globex.getByText('Sign-in required', { exact: false }).count()).toBe(1);
  });

  it('shows app segments with their synthetic IPs in an accessible table', async () => {
    const table = page.getByRole('region', { name: 'Acme Corp' }).getByRole('table', { name: 'App segments of Acme Corp' });
    await table.waitFor();
    const headers = await table.getByRole('columnheader').allInnerTexts();
    expect(headers).toEqual(['Segment', 'Domains', 'Ports', 'Synthetic IPs']);
    const intranet = table.getByRole('row', { name: /^Intranet/ });
    expect(await intranet.getByRole('rowheader').innerText()).toBe('Intranet');
    expect(await intranet.innerText()).toContain('intranet.demo.internal');
    expect(await intranet.innerText()).toContain('100.64.0.1');
    expect(await intranet.innerText()).toContain('TCP 80');
    const apps = table.getByRole('row', { name: /^Demo apps/ });
    const appsText = await apps.innerText();
    for (const s of ['*.apps.demo.internal', 'wiki.apps.demo.internal', '100.64.0.2', '100.64.0.3', 'TCP 7, 8080–8090 · UDP 53']) {
      expect(appsText).toContain(s);
    }
  });

  it('re-authenticates from the keyboard and follows the pushed status', async () => {
    const acmeButton = page.getByRole('button', { name: 'Re-authenticate Acme Corp' });
    const globexButton = page.getByRole('button', { name: 'Re-authenticate Globex' });
    expect(await acmeButton.isEnabled()).toBe(true);
    expect(await globexButton.isEnabled()).toBe(true);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Re-authenticate Globex');
    await page.keyboard.press('Enter');
    const globex = page.getByRole('region', { name: 'Globex' });
    await globex.getByRole('status').filter({ hasText: 'Sign-in started.' }).waitFor();
    expect(await page.evaluate('globalThis.__zccCalls')).toEqual([{ name: 'reauth', args: { tenant: 'globex' } }]);
    await globex.getByText('Connection: Connected').waitFor();
    expect(await globex.getByText('bob@globex.test').count()).toBe(1);
  });

  it('follows prefers-color-scheme and saves screenshots', async () => {
    const bg = (): Promise<unknown> => page.evaluate('getComputedStyle(document.body).backgroundColor');
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await bg();
    const lightShot = path.join(shotsDir, 'renderer-light.png');
    await page.screenshot({ path: lightShot, fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await bg();
    const darkShot = path.join(shotsDir, 'renderer-dark.png');
    await page.screenshot({ path: darkShot, fullPage: true });
    expect(light).toBe('rgb(246, 247, 249)');
    expect(dark).toBe('rgb(20, 23, 27)');
    expect((await stat(lightShot)).size).toBeGreaterThan(1000);
    expect((await stat(darkShot)).size).toBeGreaterThan(1000);
    console.log(`screenshots: ${lightShot} ${darkShot}`);
  });

  it('runs under the strict CSP without errors and requests nothing foreign', () => {
    expect(problems).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
