/**
 * The renderer in Chromium for policy-driven states (fixture-views.ts): banners for Safe Mode
 * and a broken configuration, the trusted-network forwarding line, a tenant not enrolled yet,
 * on/off switches honouring canToggle.
 */
import { expect, it } from 'vitest';
import { describeInChromium, screenshot } from './renderer-harness.js';

describeInChromium('test/ui/renderer-policy.test.ts', 'renderer: policy states', {}, (s) => {
  it('shows the configuration error, the network and what forwarding does on it', async () => {
    const { page, problems, foreignRequests } = await s.ui.open('policy');
    const alert = page.getByRole('alert').filter({ hasText: 'Configuration error' });
    await alert.waitFor();
    expect(await alert.innerText()).toContain('using the last good configuration: /etc/zcc/agent.json: tenants.1.cloud.edge: expected host:port');
    expect(await page.getByText('Trusted network (searchDomains)').count()).toBe(1);
    const acme = page.getByRole('region', { name: 'Acme Corp' });
    expect(await acme.getByText('Trusted network: tunnel off by profile (untrusted-only)').count()).toBe(1);
    const initech = page.getByRole('region', { name: 'Initech' });
    expect(await initech.getByText('Trusted network: apps go through the tunnel').count()).toBe(1);
    await screenshot(page, 'renderer-policy');
    expect(problems).toEqual([]);
    expect(foreignRequests).toEqual([]);
    await page.context().close();
  });

  it('offers Sign in for a tenant that is not enrolled, and no on/off switch', async () => {
    const { page } = await s.ui.open('policy');
    const globex = page.getByRole('region', { name: 'Globex' });
    await globex.waitFor();
    expect(await globex.getByText('Connection: Not signed in').count()).toBe(1);
    expect(await globex.getByText('This device is not signed in to Globex yet.', { exact: false }).count()).toBe(1);
    expect(await globex.getByRole('switch').count()).toBe(0);
    await globex.getByRole('button', { name: 'Sign in Globex' }).press('Enter');
    await globex.getByRole('status').filter({ hasText: 'Waiting for sign-in' }).waitFor();
    expect(await page.evaluate('globalThis.__zccOpened')).toEqual(['https://idp.example.test/sso?tenant=globex']);
    await screenshot(page, 'renderer-not-enrolled-signing-in');
    await page.evaluate("globalThis.__zccCompleteSignIn('globex')");
    await globex.getByRole('status').filter({ hasText: 'Signed in' }).waitFor();
    expect(await globex.getByText('Connection: Connected').count()).toBe(1);
    expect(await globex.getByRole('switch', { name: 'Globex Tunnel' }).count()).toBe(1);
    await page.context().close();
  });

  it('locks the switch of a tenant the administrator keeps on, and toggles the others', async () => {
    const { page } = await s.ui.open('policy');
    const initech = page.getByRole('switch', { name: 'Initech Tunnel' });
    await initech.waitFor();
    expect(await initech.isDisabled()).toBe(true);
    expect(await initech.getAttribute('aria-checked')).toBe('true');
    // The reason is announced with the control.
    const describedBy = await initech.getAttribute('aria-describedby');
    expect(await page.locator(`[id="${describedBy}"]`).innerText()).toContain('Managed by your administrator');

    const acme = page.getByRole('switch', { name: 'Acme Corp Tunnel' });
    expect(await acme.getAttribute('aria-checked')).toBe('true');
    await acme.focus();
    await page.keyboard.press('Space');
    await expect.poll(() => page.evaluate('globalThis.__zccCalls')).toContainEqual({ name: 'setTenantEnabled', args: { tenant: 'acme', enabled: false } });
    await expect.poll(() => acme.getAttribute('aria-checked')).toBe('false');
    await page.getByRole('region', { name: 'Acme Corp' }).getByText('Connection: Disconnected').waitFor();
    await page.context().close();
  });

  it('raises the Safe Mode banner when the agent reports it, on every tab, and drops it after', async () => {
    const { page, problems } = await s.ui.open('default');
    expect(await page.getByRole('alert').count()).toBe(0);
    await page.evaluate("globalThis.__zccPush('safe-mode')");
    const banner = page.getByRole('alert').filter({ hasText: 'Safe mode' });
    await banner.waitFor();
    expect(await banner.innerText()).toMatch(/Safe mode for Acme Corp: disaster recovery is active/);
    const acme = page.getByRole('region', { name: 'Acme Corp' });
    expect(await acme.getByText('Connection: Safe mode').count()).toBe(1);
    expect(await acme.getByText(/^Disaster recovery active since .*: DR apps only, through a private service edge$/).count()).toBe(1);
    expect(await acme.getByText('no private service edge answers for dr.acme.test on port 8443').count()).toBe(1);
    await screenshot(page, 'renderer-safe-mode');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'renderer-safe-mode-dark');
    await page.getByRole('tab', { name: 'Settings' }).click();
    expect(await banner.count()).toBe(1);
    await page.evaluate("globalThis.__zccPush('default')");
    await expect.poll(() => banner.count()).toBe(0);
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
