import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AgentStatus, WatchEvent } from '../../src/common/localapi-schema.js';
import { chown } from 'node:fs/promises';
import { LocalApiCallError, createAgentClient, trustedOwnersFor, type AgentClient } from '../../src/common/localapi-client.js';
import { FIXTURE_STATUS } from '../ui/fixture-status.js';
import { startFakeAgent, type FakeAgent } from './fake-agent.js';

let agent: FakeAgent;
let client: AgentClient;

beforeEach(async () => {
  agent = await startFakeAgent(FIXTURE_STATUS);
  client = createAgentClient({ socketPath: agent.socketPath, retryInitialMs: 10, retryMaxMs: 40 });
});
afterEach(async () => {
  await agent.close();
});

describe('request', () => {
  it('posts the request and validates the answer', async () => {
    expect(await client.request('status', {})).toEqual(FIXTURE_STATUS);
    agent.reply('reauth', (body) => ({
      status: 200,
      body: { tenant: (body as { tenant: string }).tenant, started: true, loginUrl: 'https://idp.test/login' },
    }));
    expect(await client.request('reauth', { tenant: 'acme' })).toEqual({
      tenant: 'acme',
      started: true,
      loginUrl: 'https://idp.test/login',
    });
    expect(agent.requests).toEqual([
      { name: 'status', body: {} },
      { name: 'reauth', body: { tenant: 'acme' } },
    ]);
  });

  it('turns an error answer into LocalApiCallError', async () => {
    agent.reply('exportDiagnostics', () => ({ status: 500, body: { error: 'disk full', code: 'enospc' } }));
    const err = await client.request('exportDiagnostics', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalApiCallError);
    expect(err).toMatchObject({ message: 'disk full', statusCode: 500, code: 'enospc' });
  });

  it('refuses an answer that does not match the schema', async () => {
    agent.reply('status', () => ({ status: 200, body: { version: 1, tenants: 'nope' } }));
    await expect(client.request('status', {})).rejects.toThrow();
  });

  it('rejects when the agent is not there', async () => {
    const absent = createAgentClient({ socketPath: `${agent.socketPath}.missing` });
    await expect(absent.request('status', {})).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('socket owner', () => {
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) console.log('SKIP socket-owner refusal test: chown of the socket needs root');

  it.skipIf(!asRoot)('refuses a socket that belongs to another user, before sending anything, for requests and the watch', async () => {
    await chown(agent.socketPath, 65534, 65534);
    const err = await client.request('status', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'untrusted-socket', message: `refusing ${agent.socketPath}: owned by uid 65534, not by root` });
    const errors: Error[] = [];
    const stop = client.watch({ onEvent: () => undefined, onError: (e) => errors.push(e) });
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0));
    stop();
    expect(errors[0]!.message).toContain('owned by uid 65534');
    expect(agent.requests).toEqual([]);
    // The system socket path is trusted only when root owns it; any other path also when this user does.
    expect(trustedOwnersFor('/run/zcc/localapi.sock')).toEqual([0]);
  });
});

describe('watch', () => {
  const changed = (version: string): AgentStatus => ({ ...FIXTURE_STATUS, version });

  it('delivers the snapshot, then changes, and reconnects after the stream ends', async () => {
    const events: WatchEvent[] = [];
    const errors: Error[] = [];
    const stop = client.watch({ onEvent: (e) => events.push(e), onError: (e) => errors.push(e) });
    await vi.waitFor(() => expect(events).toHaveLength(1));
    expect(events[0]).toEqual({ type: 'snapshot', status: FIXTURE_STATUS });

    agent.push(changed('2.0.0'));
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(events[1]).toMatchObject({ type: 'changed', status: { version: '2.0.0' } });

    agent.dropWatchers();
    await vi.waitFor(() => expect(events).toHaveLength(3));
    expect(errors.map((e) => e.message)).toEqual(['agent closed the watch stream']);
    expect(events[2]).toMatchObject({ type: 'snapshot', status: { version: '2.0.0' } });
    expect(agent.watchConnections()).toBe(2);
    stop();
  });

  it('drops the stream on an invalid event and reconnects', async () => {
    const events: WatchEvent[] = [];
    const errors: Error[] = [];
    const stop = client.watch({ onEvent: (e) => events.push(e), onError: (e) => errors.push(e) });
    await vi.waitFor(() => expect(events).toHaveLength(1));
    agent.pushRaw('{"type":"changed","status":{"version":"x"}}');
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(errors[0]?.message).toMatch(/invalid watch event/);
    expect(events.map((e) => e.type)).toEqual(['snapshot', 'snapshot']);
    stop();
  });

  it('keeps retrying while the agent is away and stops when told', async () => {
    const absent = createAgentClient({ socketPath: `${agent.socketPath}.missing`, retryInitialMs: 5, retryMaxMs: 10 });
    const errors: Error[] = [];
    const stop = absent.watch({ onEvent: () => undefined, onError: (e) => errors.push(e) });
    await vi.waitFor(() => expect(errors.length).toBeGreaterThanOrEqual(3));
    stop();
    const seen = errors.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(errors.length).toBe(seen);
  });
});
