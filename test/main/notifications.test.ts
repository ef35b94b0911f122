/** Desktop notifications as pure functions of the agent's state, and the notifier around them. */
import { describe, expect, it, vi } from 'vitest';
import type { AgentStatus, TenantStatus } from '../../src/common/localapi-schema.js';
import { EMPTY_NOTICE_MEMORY, noticesFor, type Notice, type NoticeMemory } from '../../src/main/notifications.js';
import { createNotifier } from '../../src/main/notifier.js';
import type { MaybeStatus } from '../../src/main/tray-state.js';

const T0 = Date.parse('2030-01-01T12:00:00Z');
const MIN = 60_000;

function tenant(over: Partial<TenantStatus> = {}): TenantStatus {
  return { id: 'acme', name: 'Acme', connection: 'connected', needsReauth: false, bytesIn: 0, bytesOut: 0, segments: [], syntheticIps: [], authExpiresAt: '2030-01-08T12:00:00Z', ...over };
}
const agent = (tenants: TenantStatus[], over: Partial<AgentStatus> = {}): AgentStatus => ({ version: '1', tenants, safeMode: false, ...over });

/** Runs statuses through noticesFor at one-minute steps; returns the titles shown at each step. */
function run(statuses: MaybeStatus[], start = T0): string[][] {
  let memory: NoticeMemory = EMPTY_NOTICE_MEMORY;
  return statuses.map((s, i) => {
    const out = noticesFor(s, memory, start + i * MIN);
    memory = out.memory;
    return out.notices.map((n) => n.title);
  });
}

const healthy = agent([tenant()]);
const safe = agent([tenant({ dr: { mode: 'on', active: true, domain: 'dr.example', warnings: [] } })]);
const failing = agent([tenant({ connection: 'error', error: 'edge unreachable' })]);
const expired = agent([tenant({ needsReauth: true, connection: 'disconnected' })]);
const brokenConfig = (at: string) => agent([tenant()], { config: { managedKeys: [], lastError: { file: '/etc/zcc/agent.json', message: 'tenants.0.id: expected a string', at } } });

describe('noticesFor', () => {
  it('is quiet while everything is fine', () => {
    expect(run([healthy, healthy, healthy])).toEqual([[], [], []]);
  });

  it('announces safe mode entered and left, once each, however often the status is pushed', () => {
    expect(run([healthy, safe, safe, safe, healthy, healthy])).toEqual([[], ['Safe mode'], [], [], ['Safe mode ended'], []]);
    expect(run([agent([], { safeMode: true }), healthy])).toEqual([['Safe mode'], ['Safe mode ended']]);
  });

  it('announces a tunnel error once, not on every push or byte-counter change', () => {
    const pushes = [failing, { ...failing, tenants: [{ ...failing.tenants[0]!, bytesIn: 99 }] }, failing];
    expect(run(pushes)).toEqual([['Acme: connection error'], [], []]);
  });

  it('does not repeat a flapping error within the repeat interval, but does after it', () => {
    const flapping = [failing, healthy, failing, healthy, failing];
    expect(run(flapping)).toEqual([['Acme: connection error'], [], [], [], []]);
    // Steps 31 minutes apart: each comeback is news again.
    let memory = EMPTY_NOTICE_MEMORY;
    const shown: number[] = [];
    flapping.forEach((s, i) => {
      const out = noticesFor(s, memory, T0 + i * 31 * MIN);
      memory = out.memory;
      shown.push(out.notices.length);
    });
    expect(shown).toEqual([1, 0, 1, 0, 1]);
  });

  it('a different error is a different notice', () => {
    const other = agent([tenant({ connection: 'error', error: 'certificate revoked' })]);
    expect(run([failing, other])).toEqual([['Acme: connection error'], ['Acme: connection error']]);
  });

  it('warns before the sign-in expires, once per expiry, then when it is needed', () => {
    const expiresAt = new Date(T0 + 45 * MIN).toISOString();
    const soon = agent([tenant({ authExpiresAt: expiresAt })]);
    // 45, 44, … minutes left: the warning comes at 30 minutes (the default), once.
    const steps = Array.from({ length: 20 }, () => soon);
    const shown = run(steps).flatMap((titles, i) => titles.map((t) => `${i}:${t}`));
    expect(shown).toEqual(['15:Sign-in expires soon']);
    const [notice] = noticesFor(soon, EMPTY_NOTICE_MEMORY, T0 + 15 * MIN).notices;
    expect(notice?.body).toBe('Acme: your sign-in expires in 30 minutes. Re-authenticate to stay connected.');
    expect(run([expired, expired])).toEqual([['Sign-in required'], []]);
    // A renewed sign-in with a later expiry warns again when that one comes close.
    const renewed = agent([tenant({ authExpiresAt: new Date(T0 + 50 * MIN).toISOString() })]);
    expect(run([soon, renewed], T0 + 20 * MIN)).toEqual([['Sign-in expires soon'], ['Sign-in expires soon']]);
  });

  it('honours the configured warning time', () => {
    const soon = agent([tenant({ authExpiresAt: new Date(T0 + 45 * MIN).toISOString() })]);
    expect(noticesFor(soon, EMPTY_NOTICE_MEMORY, T0, { reauthWarnSeconds: 3600, repeatAfterMs: 30 * MIN }).notices).toHaveLength(1);
  });

  it('asks a not-enrolled tenant to sign in', () => {
    const fresh = agent([tenant({ enrollment: 'not-enrolled', connection: 'disconnected', authExpiresAt: undefined })]);
    const [n] = noticesFor(fresh, EMPTY_NOTICE_MEMORY, T0).notices;
    expect(n).toMatchObject({ title: 'Sign in to Acme' });
  });

  it('announces a configuration error once per file and message, not per reload attempt', () => {
    expect(run([brokenConfig('2030-01-01T12:00:00Z'), brokenConfig('2030-01-01T12:01:00Z'), healthy])).toEqual([['Configuration error'], [], []]);
    const [n] = noticesFor(brokenConfig('2030-01-01T12:00:00Z'), EMPTY_NOTICE_MEMORY, T0).notices;
    expect(n?.body).toBe('/etc/zcc/agent.json: tenants.0.id: expected a string. The agent keeps using the last good configuration.');
  });

  it('an unreachable agent is one notice; coming back with the same state is not news', () => {
    expect(run([failing, undefined, undefined, failing])).toEqual([['Acme: connection error'], ['zcc agent not reachable'], [], []]);
    expect(run([safe, undefined, safe])).toEqual([['Safe mode'], ['zcc agent not reachable'], []]);
  });

  it('returns plain data', () => {
    const out = noticesFor(failing, EMPTY_NOTICE_MEMORY, T0);
    expect(structuredClone(out)).toEqual(out);
  });
});

describe('createNotifier', () => {
  it('shows what noticesFor decides and re-checks the time on tick', () => {
    let now = T0;
    const shown: Notice[] = [];
    const notifier = createNotifier({ show: (n) => shown.push(n), now: () => now });
    notifier.tick(); // nothing seen yet
    const status = agent([tenant({ authExpiresAt: new Date(T0 + 40 * MIN).toISOString() })]);
    notifier.update(status);
    expect(shown).toEqual([]);
    now += 11 * MIN;
    notifier.tick();
    expect(shown.map((n) => n.title)).toEqual(['Sign-in expires soon']);
    now += MIN;
    notifier.tick();
    expect(shown).toHaveLength(1);
  });

  it('takes the warning time from the settings', () => {
    const show = vi.fn();
    const notifier = createNotifier({ show, now: () => T0 });
    notifier.setOptions({ reauthWarnSeconds: 7200 });
    notifier.update(agent([tenant({ authExpiresAt: new Date(T0 + 90 * MIN).toISOString() })]));
    expect(show).toHaveBeenCalledOnce();
  });
});
