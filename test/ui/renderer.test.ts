/**
 * The real renderer bundle in real Chromium (playwright-core, system /usr/bin/chromium) with a
 * fake `window.zcc`: the status view, the re-auth flow, light and dark. Skips, loudly, when
 * Chromium is not installed (`apt-get install -y chromium`).
 */
import { stat } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeInChromium, screenshot } from './renderer-harness.js';

/** Accessible-ish name of the focused element: its text content. */
const focused = (page: Page): Promise<unknown> => page.evaluate('document.activeElement?.textContent');

describeInChromium('test/ui/renderer.test.ts', 'renderer in Chromium', { fixture: 'default' }, (s) => {
  it('renders each tenant as a labelled region with its state and details', async () => {
    const acme = s.page.getByRole('region', { name: 'Acme Corp' });
    await acme.waitFor();
    expect(await acme.getByText('Connection: Connected').count()).toBe(1);
    expect(await acme.getByRole('definition').allInnerTexts()).toEqual(
      expect.arrayContaining(['ada@acme.test', 'edge-1.acme.test:443', '5.1 MiB', '20.0 KiB']),
    );
    // Time to expiry next to the expiry itself.
    const expiry = await acme.getByRole('definition').filter({ hasText: '2030' }).innerText();
    expect(expiry).toMatch(/\((in \d+ (days|h|min).*|expired)\)$/);
    const globex = s.page.getByRole('region', { name: 'Globex' });
    expect(await globex.getByText('Sign-in required', { exact: false }).count()).toBe(1);
  });

  it('shows app segments with their synthetic IPs in an accessible table', async () => {
    const table = s.page.getByRole('region', { name: 'Acme Corp' }).getByRole('table', { name: 'App segments of Acme Corp' });
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
    await screenshot(s.page, 'renderer-status');
  });

  it('has a sensible tab order with named controls', async () => {
    await s.page.locator('body').focus();
    const order: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      await s.page.keyboard.press('Tab');
      order.push(await focused(s.page));
    }
    expect(order).toEqual(['Status', 'Acme Corp Tunnelon', 'Re-authenticate Acme Corp', 'Globex Tunneloff', 'Re-authenticate Globex']);
    // The switch's name leaves out the on/off text, which aria-checked carries.
    expect(await s.page.getByRole('switch', { name: 'Acme Corp Tunnel' }).getAttribute('aria-checked')).toBe('true');
  });

  it('re-authenticates from the keyboard: opens the login URL, waits, then shows the new sign-in', async () => {
    const globex = s.page.getByRole('region', { name: 'Globex' });
    await s.page.getByRole('button', { name: 'Re-authenticate Globex' }).focus();
    await s.page.keyboard.press('Enter');
    await globex.getByRole('status').filter({ hasText: 'Waiting for sign-in' }).waitFor();
    expect(await s.page.evaluate('globalThis.__zccCalls')).toEqual([{ name: 'reauth', args: { tenant: 'globex' } }]);
    expect(await s.page.evaluate('globalThis.__zccOpened')).toEqual(['https://idp.example.test/sso?tenant=globex']);
    // Focus moved to Cancel, so Escape-less keyboard users can back out at once.
    expect(await focused(s.page)).toBe('Cancel sign-in to Globex');
    expect(await globex.getByRole('button', { name: 'Open the sign-in page again for Globex' }).count()).toBe(1);
    await screenshot(s.page, 'renderer-reauth-waiting');
    await s.page.evaluate("globalThis.__zccCompleteSignIn('globex')");
    await globex.getByRole('status').filter({ hasText: /^Signed in; the sign-in is valid until .*2030/ }).waitFor();
    await globex.getByText('Connection: Connected').waitFor();
    expect(await globex.getByText('bob@globex.test').count()).toBe(1);
    expect(await globex.getByText('Sign-in required', { exact: false }).count()).toBe(0);
    await screenshot(s.page, 'renderer-reauth-done');
  });

  it('cancels a sign-in with Space and puts focus back on its button', async () => {
    const acme = s.page.getByRole('region', { name: 'Acme Corp' });
    await acme.getByRole('button', { name: 'Re-authenticate Acme Corp' }).click();
    const cancel = acme.getByRole('button', { name: 'Cancel sign-in to Acme Corp' });
    await cancel.waitFor();
    await s.page.keyboard.press('Space');
    await acme.getByRole('button', { name: 'Re-authenticate Acme Corp' }).waitFor();
    await expect.poll(() => focused(s.page)).toBe('Re-authenticate Acme Corp');
    expect(await acme.getByText('Waiting for sign-in', { exact: false }).count()).toBe(0);
  });

  it('follows prefers-color-scheme and saves screenshots', async () => {
    const bg = (): Promise<unknown> => s.page.evaluate('getComputedStyle(document.body).backgroundColor');
    await s.page.emulateMedia({ colorScheme: 'light' });
    const light = await bg();
    const lightShot = await screenshot(s.page, 'renderer-light');
    await s.page.emulateMedia({ colorScheme: 'dark' });
    const dark = await bg();
    const darkShot = await screenshot(s.page, 'renderer-dark');
    expect(light).toBe('rgb(246, 247, 249)');
    expect(dark).toBe('rgb(20, 23, 27)');
    expect((await stat(lightShot)).size).toBeGreaterThan(1000);
    expect((await stat(darkShot)).size).toBeGreaterThan(1000);
    await s.page.emulateMedia({ colorScheme: 'light' });
  });

  it('runs under the strict CSP without errors and requests nothing foreign', () => {
    expect(s.w.problems).toEqual([]);
    expect(s.w.foreignRequests).toEqual([]);
  });
});
