import { execFileSync } from 'node:child_process';
import type { Logger } from '../../../common/log.js';
import type { Agent } from '../../agent.js';
import { applyHostSetup, interceptUnavailable, removeHostSetup, removeLeftovers, ROUTE_PROTO } from './host-setup.js';
import { removeJournalSync } from './journal.js';
import { NFT_FAMILY, NFT_TABLE, type InterceptMode } from './nft-ruleset.js';
import { PortGate, type PortGateOptions } from './port-gate.js';
import { NativeTcp } from './native-tcp.js';
import { DEFAULT_EARLY_DATA_LIMIT, type TcpCounters } from './tcp-connection.js';
import { TcpFront } from './tcp-front.js';
import { resolveTimeouts, type InterceptTimeouts } from './timeouts.js';
import { UdpFront } from './udp-front.js';
import { chooseDataPlane, type DataPlaneChoice } from '../../../../native/dataplane/dataplane-process.js';

export interface KernelInterceptOptions {
  agent: Agent;
  log: Logger;
  /** Agent state dir: the journal of host changes lives here. */
  stateDir: string;
  /** Default `auto`: TPROXY, or redirect + SO_ORIGINAL_DST (TCP only) when the kernel lacks it. */
  mode?: InterceptMode | 'auto';
  timeouts?: Partial<InterceptTimeouts>;
  /** Early data held per connection while its microtunnel opens (default 256 KiB). */
  earlyDataLimit?: number;
  /** Refuse ports outside an app's segments in the kernel, before the handshake (default on). */
  portGate?: boolean | Omit<PortGateOptions, 'log'>;
  /**
   * Who carries intercepted TCP: `native` the zcc-dataplane process (native/dataplane; UDP stays
   * here), `node` this process, `auto` (default) native when it can be built, else node.
   */
  dataPlane?: DataPlaneChoice;
}

export interface KernelInterceptInfo {
  mode: InterceptMode;
  cidr: string;
  tcpPort: number;
  dataPlane: 'node' | 'native';
  udpPort?: number;
}

/**
 * Intercept mode on Linux: every TCP and UDP flow to the synthetic pool, any port, reaches the
 * agent without a proxy setting in the application. See docs/architecture.md, "Interception on
 * Linux", for the route, the rules and why.
 */
export class KernelIntercept {
  readonly counters: TcpCounters = { accepted: 0, refused: 0, failed: 0, established: 0 };
  private tcp: TcpFront | null = null;
  private native: NativeTcp | null = null;
  private udp: UdpFront | null = null;
  private gate: PortGate | null = null;
  private info: KernelInterceptInfo | null = null;
  private readonly onChange = (): void => this.gate?.reset();
  private readonly onExit = (): void => this.removeSync();

  constructor(private readonly opts: KernelInterceptOptions) {}

  get running(): KernelInterceptInfo | null {
    return this.info;
  }

  /** The native data plane, when it carries TCP. */
  get nativeTcp(): NativeTcp | null {
    return this.native;
  }

  get udpCounters(): UdpFront['counters'] | undefined {
    return this.udp?.counters;
  }

  get activeUdpFlows(): number {
    return this.udp?.activeFlows ?? 0;
  }

  async start(): Promise<KernelInterceptInfo> {
    if (this.info) return this.info;
    const { agent, log, stateDir } = this.opts;
    const unavailable = await interceptUnavailable();
    if (unavailable) throw new Error(unavailable);
    const timeouts = resolveTimeouts(this.opts.timeouts);
    const cidr = agent.pool.range.cidr;
    const isSynthetic = (ip: string): boolean => agent.pool.contains(ip);
    await removeLeftovers(stateDir, log);
    const tuning = typeof this.opts.portGate === 'object' ? this.opts.portGate : {};
    const gate = this.opts.portGate === false ? undefined : new PortGate({ log, ...tuning });
    this.gate = gate ?? null;
    const ilog = log.child({ component: 'kernel-intercept' });
    const dataPlane = chooseDataPlane(this.opts.dataPlane ?? 'auto', (why) => ilog.warn({ why }, 'native data plane unavailable: intercepted TCP is carried by Node'));
    process.once('exit', this.onExit);
    try {
      let tcpPort: number;
      if (dataPlane === 'native') {
        this.native = await NativeTcp.start(agent, ilog, timeouts, gate);
        tcpPort = this.native.port;
      } else {
        this.tcp = new TcpFront({ agent, log: ilog, timeouts, earlyDataLimit: this.opts.earlyDataLimit ?? DEFAULT_EARLY_DATA_LIMIT, gate, counters: this.counters }, isSynthetic);
        tcpPort = await this.tcp.listen();
      }
      const wantUdp = this.opts.mode !== 'redirect';
      if (wantUdp) this.udp = new UdpFront({ agent, log: ilog, idleMs: timeouts.udpIdleMs, gate, isSynthetic });
      const udpPort = this.udp?.listen() ?? tcpPort;
      const mode = await applyHostSetup({ cidr, tcpPort, udpPort, mode: this.opts.mode ?? 'auto', stateDir, log: ilog });
      if (mode === 'redirect' && this.udp) {
        await this.udp.close();
        this.udp = null;
      }
      agent.on('change', this.onChange);
      this.info = { mode, cidr, tcpPort, dataPlane, ...(this.udp ? { udpPort } : {}) };
      ilog.info({ ...this.info, timeouts }, 'kernel intercept on');
      return this.info;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Removes every host change, then resets live connections and closes the listeners. */
  async stop(): Promise<void> {
    const { agent, stateDir, log } = this.opts;
    agent.off('change', this.onChange);
    this.gate?.stop();
    await removeHostSetup({ cidr: agent.pool.range.cidr, stateDir });
    process.off('exit', this.onExit);
    await this.tcp?.close();
    await this.native?.stop();
    await this.udp?.close();
    this.tcp = this.udp = this.gate = this.native = null;
    if (this.info) log.info('kernel intercept off');
    this.info = null;
  }

  /**
   * Last-chance cleanup when the process exits without stop() (process.exit, an uncaught
   * exception): 'exit' handlers cannot wait, so this runs the tools synchronously. A SIGKILL
   * skips it; the journal covers that on the next start.
   */
  private removeSync(): void {
    this.udp?.interrupt();
    const quiet = { stdio: 'ignore' as const, timeout: 5_000 };
    const tryRun = (file: string, args: string[]): void => {
      try {
        execFileSync(file, args, quiet);
      } catch {
        // already gone, or nothing more we can do while exiting
      }
    };
    tryRun('nft', ['delete', 'table', NFT_FAMILY, NFT_TABLE]);
    tryRun('ip', ['route', 'flush', 'table', 'local', 'proto', String(ROUTE_PROTO)]);
    removeJournalSync(this.opts.stateDir);
  }
}
