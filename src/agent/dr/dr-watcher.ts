import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import { decideDrMode, type DrDecision, type DrMode, type DrRecord } from '../../protocol/dr-record.js';
import type { DrDns } from './dr-dns.js';

export interface DrWatcherOptions {
  domain: string;
  dns: DrDns;
  /** Set: records must carry a valid signature by this key. Unset: they must be unsigned. */
  publicKey?: KeyObject;
  pollMs: number;
  log: Logger;
  /** Mode to start from, e.g. restored from sealed state; default off. */
  initialMode?: DrMode;
  now?: () => number;
}

export interface DrModeChange {
  mode: DrMode;
  previous: DrMode;
  record?: DrRecord;
}

export interface DrPollResult {
  at: number;
  decision: DrDecision;
}

/**
 * Polls the DR domain's TXT records and turns them into a mode (decideDrMode does the judging).
 * Emits `change` when the mode changes, `warning` for each record it ignores, `polled` after
 * every poll. Polls never overlap; a slow resolver just delays the next one.
 */
export class DrWatcher extends EventEmitter<{ change: [DrModeChange]; warning: [string]; polled: [DrPollResult] }> {
  private current: DrMode;
  private currentRecord: DrRecord | undefined;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<DrDecision> | null = null;
  private lastWarnings = '';
  private lastPoll: DrPollResult | undefined;
  private generation = 0;

  constructor(private readonly opts: DrWatcherOptions) {
    super();
    this.current = opts.initialMode ?? 'off';
  }

  get mode(): DrMode {
    return this.current;
  }

  get record(): DrRecord | undefined {
    return this.currentRecord;
  }

  get last(): DrPollResult | undefined {
    return this.lastPoll;
  }

  /** Polls at once, then every `pollMs`. */
  start(): void {
    if (this.timer) return;
    // A stop() and start() during a poll must not leave two loops running.
    const generation = ++this.generation;
    const tick = (): void => {
      void this.poll().finally(() => {
        if (this.timer && generation === this.generation) this.timer = setTimeout(tick, this.opts.pollMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One poll now (joins one in flight). */
  poll(): Promise<DrDecision> {
    this.running ??= this.pollOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async pollOnce(): Promise<DrDecision> {
    const now = this.opts.now ?? Date.now;
    const lookup = await this.opts.dns.txt(this.opts.domain);
    const decision = decideDrMode(lookup, { publicKey: this.opts.publicKey, now: now() });
    // The same bad record is seen at every poll: say so once, again only when it changes.
    const key = decision.warnings.join('\n');
    if (key !== this.lastWarnings) {
      for (const w of decision.warnings) {
        this.opts.log.warn({ domain: this.opts.domain, mode: this.current }, w);
        this.emit('warning', w);
      }
    }
    this.lastWarnings = key;
    if (decision.mode && decision.mode !== this.current) {
      const previous = this.current;
      this.current = decision.mode;
      this.currentRecord = decision.record;
      this.opts.log.info({ domain: this.opts.domain, mode: decision.mode, previous, issued: decision.record?.t, expires: decision.record?.x }, `DR mode ${decision.mode}`);
      this.emit('change', { mode: decision.mode, previous, record: decision.record });
    } else if (decision.mode) {
      this.currentRecord = decision.record;
    }
    this.lastPoll = { at: now(), decision };
    this.emit('polled', this.lastPoll);
    return decision;
  }
}
