/**
 * Idle timeouts of intercepted flows. Defaults are ZPA's timeout policy (seed 003): an open TCP
 * connection never times out, a half-closed one after 6 minutes idle, a UDP flow after 60 s.
 * 0 means never.
 */
export interface InterceptTimeouts {
  /** TCP with both directions open, idle limit; default 0 (never). */
  tcpOpenIdleMs: number;
  /** TCP after a FIN in one direction, idle limit; default 6 min. */
  tcpHalfClosedIdleMs: number;
  /** UDP flow (client ip:port ↔ synthetic ip:port) idle limit; default 60 s. */
  udpIdleMs: number;
  /** From accept to microtunnel established; the client gets an RST after it. Default 30 s. */
  connectMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<InterceptTimeouts> = {
  tcpOpenIdleMs: 0,
  tcpHalfClosedIdleMs: 6 * 60_000,
  udpIdleMs: 60_000,
  connectMs: 30_000,
};

export function resolveTimeouts(given: Partial<InterceptTimeouts> = {}): InterceptTimeouts {
  const t = { ...DEFAULT_TIMEOUTS, ...given };
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`timeout ${k} must be >= 0 ms (0 = never), got ${v}`);
  }
  if (t.connectMs === 0) throw new RangeError('timeout connectMs must be > 0');
  return t;
}

/**
 * Calls `onIdle` once nothing happened for the current limit. `touch()` records activity;
 * `setLimit()` switches limits (e.g. open → half-closed). Timers are unref'd: an idle timer
 * alone never keeps the agent alive. One timer per flow, re-armed only when it fires, so
 * activity costs a clock read, not a timer reset.
 */
export class IdleTimer {
  private last = Date.now();
  private limit = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly onIdle: (idleMs: number) => void) {}

  touch(): void {
    this.last = Date.now();
  }

  setLimit(ms: number): void {
    this.limit = ms;
    this.arm();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.limit = 0;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.limit <= 0) return;
    const wait = Math.max(0, this.last + this.limit - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      const idle = Date.now() - this.last;
      if (idle >= this.limit) this.onIdle(idle);
      else this.arm();
    }, wait);
    this.timer.unref();
  }
}
