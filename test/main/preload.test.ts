/** src/preload/preload.ts against a fake `electron`: exactly one typed bridge, plain data only. */
import { describe, expect, it, vi } from 'vitest';
import { BRIDGE_KEY, IPC_CHANNELS, type ZccBridge } from '../../src/common/bridge.js';
import type { AgentStatus } from '../../src/common/localapi-schema.js';
import { FIXTURE_STATUS } from '../ui/fixture-status.js';
import * as fake from './fake-electron.js';

vi.mock('electron', () => import('./fake-electron.js'));

await import('../../src/preload/preload.js');

function bridge(): ZccBridge {
  const b = fake.contextBridge.exposed.get(BRIDGE_KEY);
  if (!b) throw new Error('bridge not exposed');
  return b as ZccBridge;
}

describe('preload', () => {
  it('exposes only window.zcc, frozen, with the bridge methods', () => {
    expect([...fake.contextBridge.exposed.keys()]).toEqual([BRIDGE_KEY]);
    expect(Object.isFrozen(bridge())).toBe(true);
    expect(Object.keys(bridge()).sort()).toEqual(['getStatus', 'onAgentError', 'onStatus', 'openLoginUrl', 'request']);
  });

  it('invokes the shared channel names', async () => {
    fake.ipcRenderer.invoke.mockResolvedValueOnce(FIXTURE_STATUS);
    expect(await bridge().getStatus()).toEqual(FIXTURE_STATUS);
    expect(fake.ipcRenderer.invoke).toHaveBeenLastCalledWith(IPC_CHANNELS.getStatus);
    fake.ipcRenderer.invoke.mockResolvedValueOnce({ tenant: 'acme', enabled: false });
    expect(await bridge().request('setTenantEnabled', { tenant: 'acme', enabled: false })).toEqual({
      tenant: 'acme',
      enabled: false,
    });
    expect(fake.ipcRenderer.invoke).toHaveBeenLastCalledWith(IPC_CHANNELS.request, 'setTenantEnabled', {
      tenant: 'acme',
      enabled: false,
    });
  });

  it('hands a sign-in URL to the main process to open', async () => {
    fake.ipcRenderer.invoke.mockResolvedValueOnce(undefined);
    await bridge().openLoginUrl('https://idp.test/login');
    expect(fake.ipcRenderer.invoke).toHaveBeenLastCalledWith(IPC_CHANNELS.openLoginUrl, 'https://idp.test/login');
  });

  it('passes pushed payloads without the IPC event and unsubscribes', () => {
    const seen: unknown[][] = [];
    const off = bridge().onStatus((...args: unknown[]) => seen.push(args));
    const offErr = bridge().onAgentError((reason) => seen.push([reason]));
    const senderEvent = { sender: { secret: true } };
    fake.ipcRenderer.emit(IPC_CHANNELS.status, senderEvent, FIXTURE_STATUS);
    fake.ipcRenderer.emit(IPC_CHANNELS.agentError, senderEvent, 'gone');
    expect(seen).toEqual([[FIXTURE_STATUS], ['gone']]);
    off();
    offErr();
    fake.ipcRenderer.emit(IPC_CHANNELS.status, senderEvent, { ...FIXTURE_STATUS, version: 'x' } satisfies AgentStatus);
    expect(seen).toHaveLength(2);
    expect(fake.ipcRenderer.listeners.get(IPC_CHANNELS.status)).toEqual([]);
  });
});
