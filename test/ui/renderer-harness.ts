/**
 * Serves the real renderer bundle with the fake bridge (fake-bridge.ts) from 127.0.0.1 with
 * the main process's CSP header, and drives it in Debian's Chromium through playwright-core.
 * Pages record console problems and any request that leaves the page's own origin.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe } from 'vitest';
import { PROJECT_ROOT, buildRenderer } from '../../scripts/build-renderer.js';
import { CONTENT_SECURITY_POLICY } from '../../src/main/security.js';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Where screenshots go: test-artifacts/ui/ (kept after the run), or $ZCC_UI_SCREENSHOTS. */
export const SCREENSHOT_DIR = process.env.ZCC_UI_SCREENSHOTS ?? path.join(PROJECT_ROOT, 'test-artifacts', 'ui');

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface WatchedPage {
  page: Page;
  /** console errors/warnings and page errors */
  problems: string[];
  /** requests to anything but the harness's own origin */
  foreignRequests: string[];
}

export interface RendererHarness {
  baseUrl: string;
  browser: Browser;
  /** A new page showing `fixture` (see fixture-views.ts), loaded and watched. */
  open(fixture?: string, opts?: BrowserContextOptions): Promise<WatchedPage>;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

export async function startRendererHarness(): Promise<RendererHarness> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'zcc-ui-'));
  const { outDir } = await buildRenderer({ outDir: path.join(tmp, 'renderer') });
  await esbuild.build({
    entryPoints: [path.join(PROJECT_ROOT, 'test', 'ui', 'fake-bridge.ts')],
    outfile: path.join(outDir, 'fake-bridge.js'),
    bundle: true,
    format: 'iife',
    target: 'chrome120',
    logLevel: 'silent',
  });
  const server = http.createServer((req, res) => {
    // Chromium asks for a favicon on its own; the Electron window never does.
    if (req.url === '/favicon.ico') return void res.writeHead(204).end();
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    const name = pathname === '/' ? '/index.html' : pathname;
    const file = path.join(outDir, path.normalize(name).replace(/^([/\\]|\.\.)+/, ''));
    readFile(file).then(
      (body) => {
        const out = name === '/index.html' ? body.toString('utf8').replace('<script defer src="./app.js">', '<script src="./fake-bridge.js"></script>\n    $&') : body;
        res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-security-policy': CONTENT_SECURITY_POLICY });
        res.end(out);
      },
      () => void res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await launchChromium();

  return {
    baseUrl,
    browser,
    async open(fixture = 'default', opts = {}) {
      const context = await browser.newContext({ viewport: { width: 720, height: 900 }, ...opts });
      const page = await context.newPage();
      const watched: WatchedPage = { page, problems: [], foreignRequests: [] };
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') watched.problems.push(`console.${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => watched.problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => {
        if (!r.url().startsWith(baseUrl)) watched.foreignRequests.push(r.url());
      });
      await page.goto(`${baseUrl}/?fixture=${encodeURIComponent(fixture)}`);
      await page.getByRole('heading', { level: 1, name: 'zcc' }).waitFor();
      return watched;
    },
    async close() {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** What a suite of describeInChromium reads in its tests, set before the first one runs. */
export interface ChromiumSuite {
  ui: RendererHarness;
  /** The page of the fixture the suite opened, when it named one. */
  w: WatchedPage;
  page: Page;
}

/**
 * A describe block against the renderer harness: skipped, with a warning naming `file`, when
 * Chromium is missing; otherwise the harness starts before the block's tests (and opens
 * `fixture`, when given) and closes after them.
 */
export function describeInChromium(file: string, name: string, opts: { fixture?: string }, tests: (suite: ChromiumSuite) => void): void {
  if (!hasChromium) console.warn(`${file} SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium)`);
  describe.skipIf(!hasChromium)(name, () => {
    const suite = {} as ChromiumSuite;
    beforeAll(async () => {
      suite.ui = await startRendererHarness();
      if (opts.fixture !== undefined) {
        suite.w = await suite.ui.open(opts.fixture);
        suite.page = suite.w.page;
      }
    });
    afterAll(async () => {
      await suite.ui?.close();
    });
    tests(suite);
  });
}
