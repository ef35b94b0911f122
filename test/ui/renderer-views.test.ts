/**
 * The renderer's Settings and Diagnostics views in Chromium, against the fake bridge: managed
 * settings locked, editable ones changed through setSetting, a refusal shown in words; versions,
 * fingerprint hash, recent log lines and Export. Driven from the keyboard where it matters.
 */
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeInChromium, screenshot } from './renderer-harness.js';

const calls = (page: Page): Promise<unknown> => page.evaluate('globalThis.__zccCalls');

describeInChromium('test/ui/renderer-views.test.ts', 'renderer: settings and diagnostics', { fixture: 'default' }, (s) => {
  it('switches tabs with the arrow keys (WAI-ARIA tabs)', async () => {
    const status = s.page.getByRole('tab', { name: 'Status' });
    expect(await status.getAttribute('aria-selected')).toBe('true');
    await status.focus();
    await s.page.keyboard.press('ArrowRight');
    const settings = s.page.getByRole('tab', { name: 'Settings' });
    expect(await settings.getAttribute('aria-selected')).toBe('true');
    expect(await s.page.evaluate('document.activeElement?.textContent')).toBe('Settings');
    const panel = s.page.getByRole('tabpanel', { name: 'Settings' });
    await panel.getByRole('heading', { name: 'Settings' }).waitFor();
    // Only the selected tab is a Tab stop.
    expect(await status.getAttribute('tabindex')).toBe('-1');
    await s.page.keyboard.press('End');
    expect(await s.page.getByRole('tab', { name: 'Diagnostics' }).getAttribute('aria-selected')).toBe('true');
    await s.page.keyboard.press('Home');
    expect(await status.getAttribute('aria-selected')).toBe('true');
  });

  it('shows managed settings locked and the others editable', async () => {
    await s.page.getByRole('tab', { name: 'Settings' }).click();
    const list = s.page.getByRole('list', { name: 'Settings' });
    await list.waitFor();
    expect(await s.page.getByText('3 of 7 settings are managed by your administrator', { exact: false }).count()).toBe(1);
    // Managed: the same control, disabled, with the reason as its description.
    const validation = s.page.getByRole('switch', { name: 'dns.domainValidation' });
    expect(await validation.isDisabled()).toBe(true);
    expect(await validation.isChecked()).toBe(true);
    const desc = (await validation.getAttribute('aria-describedby'))?.split(' ') ?? [];
    const texts = await Promise.all(desc.map((id) => s.page.locator(`[id="${id}"]`).innerText()));
    expect(texts.join(' | ')).toContain('Managed by your administrator');
    const profile = s.page.getByRole('combobox', { name: 'tenants.acme.forwardingProfile' });
    expect(await profile.isDisabled()).toBe(true);
    expect(await profile.inputValue()).toBe('untrusted-only');
    expect(await list.getByRole('listitem').filter({ hasText: 'ui.hiddenMenuItems' }).innerText()).toMatch(/quit[\s\S]*Managed by your administrator/);
    // Editable: booleans and known enumerations; other values read-only.
    expect(await s.page.getByRole('switch', { name: 'ui.hideWindowOnLaunch' }).isEnabled()).toBe(true);
    expect(await s.page.getByRole('combobox', { name: 'logging.level' }).isEnabled()).toBe(true);
    expect(await s.page.getByRole('status', { name: 'timeouts.udpIdleSeconds' }).innerText()).toBe('60');
    await screenshot(s.page, 'renderer-settings');
  });

  it('changes a setting through setSetting from the keyboard', async () => {
    const hide = s.page.getByRole('switch', { name: 'ui.hideWindowOnLaunch' });
    await hide.focus();
    await s.page.keyboard.press('Space');
    await expect.poll(() => calls(s.page)).toContainEqual({ name: 'setSetting', args: { key: 'ui.hideWindowOnLaunch', value: true } });
    await expect.poll(() => hide.isChecked()).toBe(true);
    const level = s.page.getByRole('combobox', { name: 'logging.level' });
    await level.selectOption('debug');
    await expect.poll(() => calls(s.page)).toContainEqual({ name: 'setSetting', args: { key: 'logging.level', value: 'debug' } });
    expect(await s.page.getByRole('listitem').filter({ hasText: 'logging.level' }).getByRole('status').last().innerText()).toBe('Saved.');
  });

  it('shows the agent’s refusal in words and keeps the old value', async () => {
    const match = s.page.getByRole('combobox', { name: 'trustedNetwork.match' });
    await match.selectOption('all');
    const item = s.page.getByRole('listitem').filter({ hasText: 'trustedNetwork.match' });
    await item.getByText('Not changed: trustedNetwork.match is managed by your administrator').waitFor();
    expect(await match.inputValue()).toBe('any');
    await screenshot(s.page, 'renderer-settings-refused');
  });

  it('shows versions, the fingerprint hash and recent log lines, and exports', async () => {
    await s.page.getByRole('tab', { name: 'Diagnostics' }).click();
    const panel = s.page.getByRole('tabpanel', { name: 'Diagnostics' });
    await panel.getByRole('table', { name: 'Recent log lines' }).waitFor();
    expect(await panel.getByRole('definition').allInnerTexts()).toEqual(['0.1.0-test', 'v22.11.0', 'linux-x64', 'sha256:3f2a9c1b']);
    expect(await calls(s.page)).toContainEqual({ name: 'diagnostics', args: { limit: 200 } });
    const rows = panel.getByRole('table', { name: 'Recent log lines' }).getByRole('row');
    expect(await rows.count()).toBe(4); // header + 3, newest first
    expect(await rows.nth(1).innerText()).toMatch(/error\s+config\s+configuration \/etc\/zcc\/agent.json rejected/);
    expect(await rows.nth(3).innerText()).toMatch(/info\s+tunnel · acme\s+Z-Tunnel up/);
    // The scrolling log is reachable from the keyboard.
    expect(await panel.getByRole('region', { name: 'Recent log lines, scrollable' }).getAttribute('tabindex')).toBe('0');
    await panel.getByRole('button', { name: 'Export diagnostics' }).press('Enter');
    await panel.getByRole('status').filter({ hasText: 'Diagnostics saved to /tmp/zcc-diagnostics.zip (1.2 KiB).' }).waitFor();
    await screenshot(s.page, 'renderer-diagnostics');
    await s.page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(s.page, 'renderer-diagnostics-dark');
  });

  it('ran without console errors and requested nothing foreign', () => {
    expect(s.w.problems).toEqual([]);
    expect(s.w.foreignRequests).toEqual([]);
  });
});
