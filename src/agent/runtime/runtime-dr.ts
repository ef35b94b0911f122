import type { Logger } from '../../common/log.js';
import type { AgentConfig } from '../config/schema.js';
import { DrController } from '../dr/dr-controller.js';
import type { AgentState } from '../identity/agent-state.js';
import { drSettingsOf } from './runtime-config.js';

export interface RuntimeDrOptions {
  state: AgentState;
  log: Logger;
  /** DR record polling faster than the configuration allows (demo, tests). */
  pollMs?: number;
  /** After every replacement of the controller: tunnels must attach to the new one. */
  onReplaced(): void;
  /** After every DR mode change. */
  onChange(): void;
}

/**
 * The runtime's DR controller over time: (re)created for the configured tenants when the `dr`
 * section or the tenants change, carrying the segment cache over. The cache is sealed to disk
 * on every mode change, periodically and on stop, so a restart during an outage still has the
 * DR apps.
 */
export class RuntimeDr {
  private current?: DrController;
  private saveTimer?: NodeJS.Timeout;

  constructor(private readonly opts: RuntimeDrOptions) {}

  get controller(): DrController | undefined {
    return this.current;
  }

  /** `undefined` (or no `dr` section) stops DR. */
  async restart(config: AgentConfig | undefined): Promise<void> {
    const { log } = this.opts;
    const old = this.current;
    let snapshot: unknown = old?.snapshot();
    clearInterval(this.saveTimer);
    if (old) {
      old.stop();
      this.current = undefined;
      await this.save(snapshot);
    }
    if (config?.dr) {
      const settings = { ...drSettingsOf(config.dr), ...(this.opts.pollMs ? { pollMs: this.opts.pollMs } : {}) };
      const tenants = Object.fromEntries(config.tenants.map((t) => [t.id, { serverName: t.cloud.serverName, settings }]));
      const dr = new DrController({ log: log.child({ component: 'dr' }), tenants });
      snapshot ??= await this.opts.state.readEntry('dr-cache').catch((err: unknown) => log.error({ err: (err as Error).message }, 'DR cache unreadable; starting without it'));
      if (snapshot !== undefined) dr.restore(snapshot);
      dr.onModeChange((e) => {
        log.warn({ tenant: e.tenant, mode: e.mode, safeMode: e.active, edges: e.edges.map((x) => x.edge) }, e.active ? 'SAFE MODE: disaster recovery applies' : 'disaster recovery ended');
        void this.save(dr.snapshot());
        this.opts.onChange();
      });
      this.current = dr;
      dr.start();
      // The controller refreshes its cache while the cloud is healthy; seal it as often.
      this.saveTimer = setInterval(() => void this.save(dr.snapshot()), config.dr.pollIntervalSeconds * 1000 * 4).unref();
    }
    this.opts.onReplaced();
  }

  private async save(snapshot: unknown): Promise<void> {
    if (snapshot === undefined) return;
    await this.opts.state.writeEntry('dr-cache', snapshot).catch((err: unknown) => this.opts.log.error({ err: (err as Error).message }, 'cannot save the DR cache'));
  }
}
