/**
 * Pure desktop-notification logic: which notices an agent status calls for, given what was
 * already shown. No electron import; notifier.ts shows them.
 *
 * Every notice has a key for the condition behind it (`error:acme:edge unreachable`). A notice
 * is shown when its condition starts to hold — not again while it keeps holding, whatever the
 * number of status pushes — and a condition that ends and comes back within `repeatAfterMs`
 * stays quiet, so a flapping tunnel does not notify every minute.
 */
import type { AgentStatus, TenantStatus } from '../common/localapi-schema.js';
import { agentInSafeMode, tenantNotEnrolled } from '../common/status-view.js';
import type { MaybeStatus } from './tray-state.js';

export interface Notice {
  key: string;
  title: string;
  body: string;
}

/** What has been shown: plain data, kept by the caller between calls. */
export interface NoticeMemory {
  /** Keys whose condition held at the last call. */
  active: string[];
  /** When each key was last shown (ms since the epoch). */
  shownAt: Record<string, number>;
}

export interface NoticeOptions {
  /** Warn this long before a sign-in expires (the agent's `timeouts.authWarningBeforeSeconds`). */
  reauthWarnSeconds: number;
  /** A condition that comes back within this time is not shown again. */
  repeatAfterMs: number;
}

export const DEFAULT_NOTICE_OPTIONS: NoticeOptions = { reauthWarnSeconds: 1_800, repeatAfterMs: 30 * 60_000 };

export const EMPTY_NOTICE_MEMORY: NoticeMemory = { active: [], shownAt: {} };

const SAFE_MODE = 'safe-mode';
const SAFE_MODE_LEFT = 'safe-mode-left';
const UNREACHABLE = 'agent-unreachable';

function minutesLeft(expiresAt: string, now: number): number {
  return Math.max(1, Math.round((Date.parse(expiresAt) - now) / 60_000));
}

function tenantNotices(t: TenantStatus, now: number, opts: NoticeOptions): Notice[] {
  const out: Notice[] = [];
  if (t.connection === 'error') {
    out.push({ key: `error:${t.id}:${t.error ?? ''}`, title: `${t.name}: connection error`, body: t.error ?? 'The tunnel failed; the agent keeps retrying.' });
  }
  if (tenantNotEnrolled(t)) {
    out.push({ key: `reauth-needed:${t.id}`, title: `Sign in to ${t.name}`, body: 'This device is not signed in to the tenant yet. Open zcc and sign in.' });
  } else if (t.needsReauth) {
    out.push({ key: `reauth-needed:${t.id}`, title: 'Sign-in required', body: `${t.name}: your sign-in has expired. Re-authenticate to reach its apps.` });
  } else if (t.authExpiresAt) {
    const left = Date.parse(t.authExpiresAt) - now;
    if (left > 0 && left <= opts.reauthWarnSeconds * 1000) {
      const minutes = minutesLeft(t.authExpiresAt, now);
      out.push({
        key: `reauth-soon:${t.id}:${t.authExpiresAt}`,
        title: 'Sign-in expires soon',
        body: `${t.name}: your sign-in expires in ${minutes} minute${minutes === 1 ? '' : 's'}. Re-authenticate to stay connected.`,
      });
    }
  }
  return out;
}

/** The notices whose conditions hold for this status (before de-duplication). */
export function currentConditions(status: AgentStatus, now: number, opts: NoticeOptions = DEFAULT_NOTICE_OPTIONS): Notice[] {
  const out: Notice[] = [];
  if (agentInSafeMode(status)) {
    out.push({ key: SAFE_MODE, title: 'Safe mode', body: 'Disaster recovery: only the apps designated for it are reachable, through a private service edge.' });
  }
  const cfg = status.config?.lastError;
  if (cfg) {
    out.push({ key: `config-error:${cfg.file}:${cfg.message}`, title: 'Configuration error', body: `${cfg.file}: ${cfg.message}. The agent keeps using the last good configuration.` });
  }
  for (const t of status.tenants) out.push(...tenantNotices(t, now, opts));
  return out;
}

/**
 * The notices to show now and the memory for the next call. `status` undefined means the
 * agent is not reachable: that is a notice of its own, and every other condition is kept as
 * it was (the agent coming back with the same error is not news).
 */
export function noticesFor(
  status: MaybeStatus,
  memory: NoticeMemory,
  now: number,
  opts: NoticeOptions = DEFAULT_NOTICE_OPTIONS,
): { notices: Notice[]; memory: NoticeMemory } {
  const wasActive = new Set(memory.active);
  let holding: Notice[];
  if (!status) {
    holding = [{ key: UNREACHABLE, title: 'zcc agent not reachable', body: 'The tray app cannot reach the agent; it keeps trying.' }];
    for (const key of wasActive) if (key !== UNREACHABLE) holding.push({ key, title: '', body: '' });
  } else {
    holding = currentConditions(status, now, opts);
    if (wasActive.has(SAFE_MODE) && !agentInSafeMode(status)) {
      holding.push({ key: SAFE_MODE_LEFT, title: 'Safe mode ended', body: 'Disaster recovery is over: all apps are reachable again.' });
    }
  }
  const shownAt: Record<string, number> = {};
  for (const [key, at] of Object.entries(memory.shownAt)) if (now - at < opts.repeatAfterMs) shownAt[key] = at;
  const notices: Notice[] = [];
  for (const n of holding) {
    if (wasActive.has(n.key) || shownAt[n.key] !== undefined) continue;
    notices.push(n);
    shownAt[n.key] = now;
  }
  // "Left" is an event, not a lasting condition: it never stays active.
  const active = holding.map((n) => n.key).filter((k) => k !== SAFE_MODE_LEFT);
  return { notices, memory: { active, shownAt } };
}
