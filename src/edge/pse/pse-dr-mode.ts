import { createPublicKey, type KeyObject } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { EventEmitter } from 'node:events';
import type { Logger } from '../../common/log.js';
import { decideDrMode, type DrLookup, type DrMode } from '../../protocol/dr-record.js';

export interface PseDrModeOptions {
  domain: string;
  resolvers?: string[];
  publicKeyPem?: string;
  pollMs: number;
  lookupTimeoutMs: number;
  log: Logger;
  /** TXT lookup, replaceable in tests. */
  lookup?: (domain: string) => Promise<DrLookup>;
}

/**
 * The PSE's own reading of the DR domain (seed 003: PSEs poll too). The judging is the shared
 * decideDrMode; this is only the loop, kept in the edge room (agent and edge share protocol/).
 */
export class PseDrMode extends EventEmitter<{ change: [DrMode, DrMode] }> {
  private current: DrMode = 'off';
  private timer: NodeJS.Timeout | null = null;
  private lastWarnings = '';
  private lastSoon = 0;
  private readonly publicKey: KeyObject | undefined;
  private readonly lookup: (domain: string) => Promise<DrLookup>;
  /** When DR started being served (for the assertion extension). */
  since: number | undefined;

  constructor(private readonly opts: PseDrModeOptions) {
    super();
    this.publicKey = opts.publicKeyPem ? createPublicKey(opts.publicKeyPem) : undefined;
    this.lookup = opts.lookup ?? txtLookup(opts.resolvers, opts.lookupTimeoutMs);
  }

  get mode(): DrMode {
    return this.current;
  }

  /** `on` or `test`: agents are served (the test group's agents are the only ones that come). */
  get serving(): boolean {
    return this.current !== 'off';
  }

  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      void this.poll().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.opts.pollMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * An agent came while we are not serving: it may have read the record before us (each side
   * polls on its own clock), so look now rather than at the next tick. At most every 5 s.
   */
  pollSoon(): void {
    if (!this.timer || Date.now() - this.lastSoon < 5_000) return;
    this.lastSoon = Date.now();
    void this.poll();
  }

  async poll(): Promise<void> {
    const d = decideDrMode(await this.lookup(this.opts.domain), { publicKey: this.publicKey, now: Date.now() });
    const key = d.warnings.join('\n');
    if (key !== this.lastWarnings) for (const w of d.warnings) this.opts.log.warn({ domain: this.opts.domain, mode: this.current }, w);
    this.lastWarnings = key;
    if (!d.mode || d.mode === this.current) return;
    const previous = this.current;
    this.current = d.mode;
    if (d.mode === 'off') this.since = undefined;
    else this.since ??= Date.now();
    this.opts.log.info({ domain: this.opts.domain, mode: d.mode, previous }, `DR mode ${d.mode}`);
    this.emit('change', d.mode, previous);
  }
}

function txtLookup(resolvers: string[] | undefined, timeoutMs: number): (domain: string) => Promise<DrLookup> {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  if (resolvers) resolver.setServers(resolvers);
  return async (domain) => {
    try {
      const txt = await resolver.resolveTxt(domain);
      return txt.length ? { kind: 'records', txt } : { kind: 'missing' };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENODATA' || code === 'ENOTFOUND') return { kind: 'missing' };
      return { kind: 'error', error: `${code || 'error'}: ${(err as Error).message}` };
    }
  };
}
