import type { Logger } from '../../../common/log.js';
import type { Agent } from '../../agent.js';
import { isDialError } from '../dialer.js';
import { OrigDstReceiver, type OrigDstDatagram } from '../../../../native/udp-origdst.js';
import { appPorts, portIn } from './app-ports.js';
import type { PortGate } from './port-gate.js';
import { UdpFlow } from './udp-flow.js';

export interface UdpCounters {
  flows: number;
  dropped: number;
}

export interface UdpFrontOptions {
  agent: Agent;
  log: Logger;
  idleMs: number;
  gate?: PortGate;
  isSynthetic: (ip: string) => boolean;
}

/**
 * UDP under TPROXY: the listener (recvmsg with IP_ORIGDSTADDR) sees the first datagrams of
 * each flow and creates the flow; the flow's own socket takes the rest. Datagrams the agent
 * cannot carry (no app at that IP, port outside its segments, tunnel down) are dropped, as
 * a network would: UDP has nothing like an RST to send from here (the port gate, once the
 * IP is gated, answers ICMP port unreachable from the kernel instead).
 */
export class UdpFront {
  private receiver: OrigDstReceiver | null = null;
  private readonly flows = new Map<string, UdpFlow>();
  readonly counters: UdpCounters = { flows: 0, dropped: 0 };

  constructor(private readonly opts: UdpFrontOptions) {}

  /** Binds 127.0.0.1:port (0: any) and returns the port. */
  listen(port = 0): number {
    const r = new OrigDstReceiver(
      { address: '127.0.0.1', port },
      (d) => this.onDatagram(d),
      (err) => this.opts.log.warn({ err: err.message }, 'UDP listener error'),
    );
    this.receiver = r;
    r.start();
    return r.address.port;
  }

  get activeFlows(): number {
    return this.flows.size;
  }

  /** Synchronous, for process 'exit': lets the process exit (see OrigDstReceiver.interrupt). */
  interrupt(): void {
    this.receiver?.interrupt();
  }

  async close(): Promise<void> {
    for (const f of [...this.flows.values()]) f.close('intercept stopping');
    await this.receiver?.stop();
    this.receiver = null;
  }

  private onDatagram(d: OrigDstDatagram): void {
    const key = `${d.from.address}:${d.from.port}>${d.to.address}:${d.to.port}`;
    const existing = this.flows.get(key);
    if (existing) return existing.fromClient(d.data);
    const flow = this.open(d, key);
    if (flow) flow.fromClient(d.data);
    else this.counters.dropped++;
  }

  private open(d: OrigDstDatagram, key: string): UdpFlow | undefined {
    const { agent, log } = this.opts;
    const flog = log.child({ udp: key });
    if (!this.opts.isSynthetic(d.to.address)) return undefined;
    const mapping = agent.pool.acquire(d.to.address);
    if (!mapping) {
      flog.debug('UDP to a synthetic IP no app has: dropped');
      return undefined;
    }
    const tenant = agent.enabledTenant(mapping.tenant);
    if (tenant) this.opts.gate?.note(d.to.address, mapping.fqdn, tenant.segments);
    if (!tenant || !portIn(appPorts(tenant.segments, mapping.fqdn, 'udp'), d.to.port)) {
      agent.pool.release(d.to.address);
      flog.info({ app: mapping.fqdn }, 'UDP port not in any segment of the app: dropped');
      return undefined;
    }
    try {
      const flow = new UdpFlow(d.from, d.to, { agent, log, idleMs: this.opts.idleMs }, flog, () => {
        this.flows.delete(key);
        agent.pool.release(d.to.address);
      });
      this.flows.set(key, flow);
      this.counters.flows++;
      return flow;
    } catch (err) {
      agent.pool.release(d.to.address);
      flog.info({ err: (err as Error).message, reason: isDialError(err) ? err.reason : undefined }, 'UDP flow not opened: dropped');
      return undefined;
    }
  }
}
