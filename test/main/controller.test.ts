/** The electron-free controller with a scripted AgentClient. */
import { describe, expect, it, vi } from 'vitest';
import { IPC_CHANNELS } from '../../src/common/bridge.js';
import type { AgentClient, WatchHandlers } from '../../src/common/localapi-client.js';
import { createController, type ControllerDeps } from '../../src/main/controller.js';
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

  it('opens only http(s) sign-in URLs', async () => {
    for (const [loginUrl, opened] of [
      ['https://idp.test/a', true],
      ['javascript:alert(1)', false],
      ['file:///etc/passwd', false],
    ] as const) {
      const { ctl, deps } = setup({ reauth: { tenant: 't', started: true, loginUrl } });
      await ctl.request('reauth', { tenant: 't' });
      expect(deps.openExternal).toHaveBeenCalledTimes(opened ? 1 : 0);
    }
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
