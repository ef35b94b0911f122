/**
 * Keeps "are we on the trusted network?" current for the agent runtime, which switches
 * untrusted-only tenants between tunnel and direct on the 'change' event.
 *
 * Triggers: resolv.conf changes (fs.watch on the file, re-armed when it is replaced, and on its
 * directory, because DHCP clients and resolvconf replace it by rename), a periodic poll
 * (gateway and address changes have no cheap event without netlink), `refresh()` from the
 * runtime on wake or link change, and `setCriteria()` on a configuration change.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../common/log.js';
import type { TrustedNetworkCriteria } from '../config/schema.js';
import { gatherFacts, type GatherOptions } from './network-facts.js';
import { evaluateTrust, namesToResolve, type CriterionResult, type NetworkFacts } from './trusted-network.js';

export type EvaluationCause = 'start' | 'resolv-conf' | 'poll' | 'refresh' | 'criteria';

export interface TrustedNetworkChange {
  trusted: boolean;
  facts: NetworkFacts;
  results: CriterionResult[];
  /** What triggered the evaluation that produced this state. */
  cause: EvaluationCause;
}

export interface TrustedNetworkMonitorOptions {
  criteria: TrustedNetworkCriteria;
  /** Default /etc/resolv.conf. */
  resolvConfPath?: string;
  /** Periodic re-evaluation; 0 turns it off. Default 15 s. */
  pollIntervalMs?: number;
  /** Further fact-gathering options (route files, lookup, interfaces) for tests and other OSes. */
  gather?: Omit<GatherOptions, 'resolvConfPath' | 'names'>;
  log?: Logger;
}

/** A save is several fs events (truncate, write, rename); evaluate once after they settle. */
const DEBOUNCE_MS = 25;

export class TrustedNetworkMonitor extends EventEmitter<{ change: [TrustedNetworkChange] }> {
  private criteria: TrustedNetworkCriteria;
  private current: TrustedNetworkChange | undefined;
  private running: Promise<TrustedNetworkChange> | undefined;
  private pending: EvaluationCause | undefined;
  private fileWatcher: FSWatcher | undefined;
  private dirWatcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: TrustedNetworkMonitorOptions) {
    super();
    this.criteria = opts.criteria;
  }

  private get resolvConf(): string {
    return this.opts.resolvConfPath ?? '/etc/resolv.conf';
  }

  /** The last evaluation (undefined before start). */
  get state(): TrustedNetworkChange | undefined {
    return this.current;
  }

  get trusted(): boolean {
    return this.current?.trusted ?? false;
  }

  /** Evaluates once (emitting the first 'change'), then watches and polls. */
  async start(): Promise<TrustedNetworkChange> {
    this.watchDir();
    this.watchFile();
    const every = this.opts.pollIntervalMs ?? 15_000;
    if (every > 0) this.timer = setInterval(() => void this.refresh('poll'), every).unref();
    return this.refresh('start');
  }

  close(): void {
    this.closed = true;
    this.fileWatcher?.close();
    this.dirWatcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }

  setCriteria(criteria: TrustedNetworkCriteria): Promise<TrustedNetworkChange> {
    this.criteria = criteria;
    return this.refresh('criteria');
  }

  /**
   * Gathers facts and evaluates; emits 'change' when the trusted state differs from before.
   * Triggers during an evaluation are coalesced into one more evaluation after it, so the
   * last word always comes from facts read after the last trigger.
   */
  refresh(cause: EvaluationCause = 'refresh'): Promise<TrustedNetworkChange> {
    if (this.running) {
      this.pending = cause;
      return this.running;
    }
    const run = this.evaluate(cause).finally(() => {
      this.running = undefined;
      const again = this.pending;
      this.pending = undefined;
      if (again && !this.closed) this.refresh(again).catch(() => undefined);
    });
    this.running = run;
    return run;
  }

  private async evaluate(cause: EvaluationCause): Promise<TrustedNetworkChange> {
    const criteria = this.criteria;
    let facts: NetworkFacts;
    try {
      facts = await gatherFacts({ ...this.opts.gather, resolvConfPath: this.resolvConf, names: namesToResolve(criteria) });
    } catch (err) {
      // Unreadable facts: keep the previous state rather than flapping to untrusted and back.
      this.opts.log?.warn({ err }, 'trusted network: cannot gather facts');
      if (this.current) return this.current;
      throw err;
    }
    const { trusted, results } = evaluateTrust(criteria, facts);
    const next: TrustedNetworkChange = { trusted, facts, results, cause };
    const flipped = this.current?.trusted !== trusted;
    this.current = next;
    if (flipped && !this.closed) {
      this.opts.log?.info({ trusted, cause, results }, trusted ? 'on a trusted network' : 'on an untrusted network');
      this.emit('change', next);
    }
    return next;
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.refresh('resolv-conf').catch(() => undefined), DEBOUNCE_MS);
  }

  /** The file itself: sees in-place writes, also through a bind mount (inotify is per inode). */
  private watchFile(): void {
    this.fileWatcher?.close();
    this.fileWatcher = undefined;
    try {
      this.fileWatcher = watch(this.resolvConf, { persistent: false }, (event) => {
        this.schedule();
        // Replaced by rename: the watch is on the old inode now; follow the new file.
        if (event === 'rename') this.watchFile();
      });
      this.fileWatcher.on('error', () => this.watchFile());
    } catch {
      // Not there (yet): the directory watch sees it appear.
    }
  }

  /** The directory: sees the file replaced or created, which a file watch cannot. */
  private watchDir(): void {
    const name = path.basename(this.resolvConf);
    try {
      this.dirWatcher = watch(path.dirname(this.resolvConf), { persistent: false }, (_event, file) => {
        if (file !== null && file.toString() !== name) return;
        if (!this.fileWatcher) this.watchFile();
        this.schedule();
      });
      this.dirWatcher.on('error', (err) => this.opts.log?.warn({ err }, 'trusted network: directory watch failed'));
    } catch (err) {
      this.opts.log?.warn({ err }, 'trusted network: cannot watch resolv.conf directory; polling only');
    }
  }
}
