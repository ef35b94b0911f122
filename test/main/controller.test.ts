/** The electron-free controller with a scripted AgentClient. */
import { describe, expect, it, vi } from 'vitest';
import { IPC_CHANNELS } from '../../src/common/bridge.js';
import type { AgentClient, WatchHandlers } from '../../src/common/localapi-client.js';
import { LOGIN_URL_TTL_MS, createController, type ControllerDeps } from '../../src/main/controller.js';
import { FIXTURE_STATUS } from '../ui/fixture-status.js';

function setup(answers: Record<string, unknown>) {
  let handlers: WatchHandlers | undefined;
  const stop = vi.fn();
  const client: AgentClient = {
    request: vi.fn((name: string) => {
      const a = answers[name];
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    }) as AgentClient['request'],
    watch: (h) => {
      handlers = h;
      return stop;
    },
  };
  const deps = {
    client,
    onStatus: vi.fn(),
    send: vi.fn(),
    openExternal: vi.fn(),
    showItemInFolder: vi.fn(),
    showWindow: vi.fn(),
    quit: vi.fn(),
    logError: vi.fn(),
  } satisfies ControllerDeps;
  const ctl = createController(deps);
  const watch = (): WatchHandlers => {
    if (!handlers) throw new Error('not watching');
    return handlers;
  };
  return { ctl, deps, watch, stop };
}

describe('controller', () => {
  it('asks the agent until a status arrived, then answers from the stream', async () => {
    const { ctl, deps, watch, stop } = setup({ status: FIXTURE_STATUS });
    const stopWatch = ctl.start();
    expect(await ctl.getStatus()).toEqual(FIXTURE_STATUS);
    expect(deps.client.request).toHaveBeenCalledOnce();
    const next = { ...FIXTURE_STATUS, version: '9' };
    watch().onEvent({ type: 'changed', status: next });
    expect(await ctl.getStatus()).toBe(next);
    expect(deps.client.request).toHaveBeenCalledOnce();
    expect(deps.onStatus).toHaveBeenLastCalledWith(next);
    expect(deps.send).toHaveBeenLastCalledWith(IPC_CHANNELS.status, next);
    stopWatch();
    expect(stop).toHaveBeenCalledOnce();
  });

  it('reports an unreachable agent once per outage', () => {
    const { ctl, deps, watch } = setup({});
    ctl.start();
    watch().onError(new Error('ECONNREFUSED'));
    watch().onError(new Error('ECONNREFUSED'));
    expect(deps.onStatus).toHaveBeenCalledExactlyOnceWith(undefined);
    expect(deps.send).toHaveBeenCalledExactlyOnceWith(IPC_CHANNELS.agentError, 'Agent not reachable: ECONNREFUSED');
    expect(ctl.latest()).toBeUndefined();
    watch().onEvent({ type: 'snapshot', status: FIXTURE_STATUS });
    watch().onError(new Error('EPIPE'));
    expect(deps.send).toHaveBeenLastCalledWith(IPC_CHANNELS.agentError, 'Agent not reachable: EPIPE');
  });

  it('opens from the window only http(s) sign-in URLs the agent handed out', async () => {
    for (const [loginUrl, opened] of [
      ['https://idp.test/a', true],
      ['javascript:alert(1)', false],
      ['file:///etc/passwd', false],
    ] as const) {
      const { ctl, deps } = setup({ reauth: { tenant: 't', started: true, loginUrl } });
      // The renderer asks: nothing opens until it hands the URL back.
      await ctl.request('reauth', { tenant: 't' });
      expect(deps.openExternal).not.toHaveBeenCalled();
      if (opened) ctl.openLoginUrl(loginUrl);
      else expect(() => ctl.openLoginUrl(loginUrl)).toThrow(/http\(s\)/);
      expect(deps.openExternal).toHaveBeenCalledTimes(opened ? 1 : 0);
    }
    const { ctl, deps } = setup({ reauth: { tenant: 't', started: true, loginUrl: 'https://idp.test/b' } });
    expect(() => ctl.openLoginUrl('https://evil.example/phish')).toThrow(/not a sign-in URL from the agent/);
    await ctl.request('reauth', { tenant: 't' });
    expect(() => ctl.openLoginUrl('https://idp.test/b')).not.toThrow();
    expect(deps.openExternal).toHaveBeenCalledOnce();
  });

  it('expires handed-out sign-in URLs', async () => {
    let now = 0;
    const { deps } = setup({});
    // Just inside the lifetime it still opens; just past it, no more.
    const ctl = createController({ ...deps, client: { ...deps.client, request: vi.fn(() => Promise.resolve({ tenant: 't', started: true, loginUrl: 'https://idp.test/c' })) as AgentClient['request'] }, now: () => now });
    await ctl.request('reauth', { tenant: 't' });
    now += LOGIN_URL_TTL_MS - 1;
    ctl.openLoginUrl('https://idp.test/c');
    now += 2;
    expect(() => ctl.openLoginUrl('https://idp.test/c')).toThrow(/not a sign-in URL/);
    expect(deps.openExternal).toHaveBeenCalledOnce();
  });

  it('the tray opens the sign-in page itself, http(s) only', async () => {
    const good = setup({ reauth: { tenant: 't', started: true, loginUrl: 'https://idp.test/a' } });
    good.ctl.handleTrayAction({ type: 'reauth', tenants: ['t'] });
    await vi.waitFor(() => expect(good.deps.openExternal).toHaveBeenCalledWith('https://idp.test/a'));
    const bad = setup({ reauth: { tenant: 't', started: true, loginUrl: 'javascript:alert(1)' } });
    bad.ctl.handleTrayAction({ type: 'reauth', tenants: ['t'] });
    await vi.waitFor(() => expect(bad.deps.logError).toHaveBeenCalledOnce());
    expect(bad.deps.openExternal).not.toHaveBeenCalled();
  });

  it('fetches settings when the agent appears, when its configuration changes, and after setSetting', async () => {
    const settings = { settings: [{ key: 'ui.hiddenMenuItems', value: ['quit'], managed: true }] };
    const { deps, watch } = setup({ settings, setSetting: { key: 'logging.level', value: 'debug' } });
    const onSettings = vi.fn();
    const ctl2 = createController({ ...deps, onSettings });
    ctl2.start();
    watch().onEvent({ type: 'snapshot', status: FIXTURE_STATUS });
    await vi.waitFor(() => expect(onSettings).toHaveBeenCalledWith(settings.settings));
    watch().onEvent({ type: 'changed', status: { ...FIXTURE_STATUS, version: 'x' } });
    await new Promise((r) => setTimeout(r, 10));
    expect(onSettings).toHaveBeenCalledOnce();
    watch().onEvent({ type: 'changed', status: { ...FIXTURE_STATUS, config: { managedKeys: ['ui.hiddenMenuItems'] } } });
    await vi.waitFor(() => expect(onSettings).toHaveBeenCalledTimes(2));
    await ctl2.request('setSetting', { key: 'logging.level', value: 'debug' });
    await vi.waitFor(() => expect(onSettings).toHaveBeenCalledTimes(3));
    // After an outage the agent may have restarted with other settings.
    watch().onError(new Error('ECONNREFUSED'));
    watch().onEvent({ type: 'snapshot', status: { ...FIXTURE_STATUS, config: { managedKeys: ['ui.hiddenMenuItems'] } } });
    await vi.waitFor(() => expect(onSettings).toHaveBeenCalledTimes(4));
  });

  it('turns tenants on and off from the tray', async () => {
    const { ctl, deps } = setup({ setTenantEnabled: { tenant: 'acme', enabled: false } });
    ctl.handleTrayAction({ type: 'setTenantEnabled', tenant: 'acme', enabled: false });
    await vi.waitFor(() => expect(deps.client.request).toHaveBeenCalledWith('setTenantEnabled', { tenant: 'acme', enabled: false }));
  });

  it('carries out tray actions and logs failures', async () => {
    const { ctl, deps } = setup({ exportDiagnostics: { path: '/tmp/diag.zip', bytes: 3 }, reauth: new Error('nope') });
    ctl.handleTrayAction({ type: 'open' });
    ctl.handleTrayAction({ type: 'exportDiagnostics' });
    ctl.handleTrayAction({ type: 'reauth', tenants: ['a'] });
    ctl.handleTrayAction({ type: 'quit' });
    await vi.waitFor(() => expect(deps.logError).toHaveBeenCalledOnce());
    expect(deps.showWindow).toHaveBeenCalledOnce();
    expect(deps.quit).toHaveBeenCalledOnce();
    expect(deps.showItemInFolder).toHaveBeenCalledWith('/tmp/diag.zip');
    expect(deps.logError.mock.calls[0]?.[0]).toBe('tray action reauth failed');
  });
});
