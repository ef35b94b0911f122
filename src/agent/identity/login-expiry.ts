import type { Logger } from '../../common/log.js';
import type { TunnelClient } from '../tunnel/tunnel-client.js';

/** Warn at most this long before expiry (seed 003's default lifetime is 7 days). */
export const REAUTH_WARN_MAX_MS = 60 * 60_000;
/** …and, for short lifetimes, when this fraction of it is left. */
export const REAUTH_WARN_FRACTION = 0.1;
// setTimeout fires at once beyond 2^31-1 ms (24.8 days); longer waits are done in hops.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * When to warn that authentication runs out: 10 % of the lifetime before expiry, but no more
 * than an hour before. `learnedAt` is when the expiry became known (the lifetime's start as far
 * as the agent can tell). Pure.
 */
export function reauthWarningAt(expiresAt: number, learnedAt: number): number {
  const lifetime = Math.max(0, expiresAt - learnedAt);
  return expiresAt - Math.min(REAUTH_WARN_MAX_MS, lifetime * REAUTH_WARN_FRACTION);
}

/** A pure function of (authExpiresAt, now): re-exported so tunnel status and agent status agree. */
export { needsReauth } from '../status.js';

/**
 * Watches one tenant's authentication expiry as the edge reports it (session-info): logs a
 * warning ahead of it and again when it has passed, and re-announces the status at expiry so
 * watchers see `needsReauth` flip without polling. Each expiry is warned about once, however
 * often reconnections repeat it.
 */
export function watchAuthExpiry(client: TunnelClient, log: Logger): AuthExpiryWatch {
  const watch = new AuthExpiryWatch(log, () => client.emit('status', client.status));
  client.on('status', (s) => watch.update(s.session?.authExpiresAt));
  return watch;
}

export class AuthExpiryWatch {
  private timers: NodeJS.Timeout[] = [];
  private current: string | undefined;
  private readonly warned = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly onChange: () => void,
  ) {}

  update(authExpiresAt: string | undefined, now = Date.now()): void {
    if (authExpiresAt === this.current) return;
    this.stop();
    this.current = authExpiresAt;
    if (authExpiresAt === undefined) return;
    const expiresAt = Date.parse(authExpiresAt);
    if (!Number.isFinite(expiresAt)) return;
    if (expiresAt <= now) {
      this.once(`expired ${authExpiresAt}`, () => this.expired(authExpiresAt));
      return;
    }
    this.at(reauthWarningAt(expiresAt, now), () =>
      this.once(`warn ${authExpiresAt}`, () =>
        this.log.warn({ authExpiresAt }, `authentication expires at ${authExpiresAt}: log in again before then to keep opening connections`),
      ),
    );
    this.at(expiresAt, () => {
      this.once(`expired ${authExpiresAt}`, () => this.expired(authExpiresAt));
      this.onChange();
    });
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.current = undefined;
  }

  private once(key: string, fn: () => void): void {
    if (this.warned.has(key)) return;
    // Only the latest few matter; the set must not grow with every re-authentication.
    if (this.warned.size > 16) this.warned.clear();
    this.warned.add(key);
    fn();
  }

  private expired(authExpiresAt: string): void {
    this.log.warn({ authExpiresAt }, `authentication expired at ${authExpiresAt}: connections already open keep working, new ones need a new login`);
  }

  private at(when: number, fn: () => void): void {
    const wait = when - Date.now();
    const timer = setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer);
      if (when - Date.now() > 0) this.at(when, fn);
      else fn();
    }, Math.min(Math.max(0, wait), MAX_TIMER_MS));
    // Never the reason the agent stays alive.
    timer.unref();
    this.timers.push(timer);
  }
}
