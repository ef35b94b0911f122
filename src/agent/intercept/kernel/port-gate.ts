import type { Logger } from '../../../common/log.js';
import type { AppSegment } from '../../../protocol/segments.js';
import { appPorts } from './app-ports.js';
import { run } from './exec.js';
import { flushGateCommands, gateCommands, type GateChange, type GatePorts } from './nft-ruleset.js';

/**
 * Teaches the kernel which ports each synthetic IP's app allows, so that a connection to any
 * other port is refused before its handshake (RST to the SYN: curl says "Connection refused")
 * rather than accepted by the listener and then reset.
 *
 * It only ever speeds refusals up: an IP the kernel has not been told about still reaches the
 * listener, which checks the ports itself and resets. An IP is gated when a connection to it is
 * accepted, with the ports of the app it names at that moment. The gate expires 30 s after it
 * was created (re-adding an existing element does not extend it), well before the pool may
 * recycle the IP for another app (60 s after its last use, and the gate was created at a use);
 * the allowed ranges have no timeout and are replaced whenever an IP is gated with other ports.
 * Segment changes drop everything at once.
 */
export interface PortGateOptions {
  log: Logger;
  gateTimeoutSec?: number;
  /** A gated IP is not sent to nft again for this long (each send is a process spawn). */
  refreshMs?: number;
}

export class PortGate {
  private readonly gatedAt = new Map<string, number>();
  /** What the kernel's allowed sets hold, per IP (committed transactions only). */
  private readonly allowed = new Map<string, { ports: GatePorts; key: string }>();
  private readonly pending = new Map<string, GatePorts>();
  private busy: Promise<void> = Promise.resolve();
  private scheduled = false;
  private stopped = false;
  /** Bumped by reset(): a batch computed before a segment change must not land after it. */
  private epoch = 0;
  private readonly timeoutSec: number;
  private readonly refreshMs: number;

  constructor(private readonly opts: PortGateOptions) {
    this.timeoutSec = opts.gateTimeoutSec ?? 30;
    this.refreshMs = opts.refreshMs ?? 10_000;
  }

  /** A connection to `ip` (the app `fqdn` of a tenant with `segments`) was accepted. */
  note(ip: string, fqdn: string, segments: readonly AppSegment[]): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - (this.gatedAt.get(ip) ?? -Infinity) < this.refreshMs) return;
    this.gatedAt.set(ip, now);
    if (this.gatedAt.size > 4096) for (const [k, at] of this.gatedAt) if (now - at >= this.refreshMs) this.gatedAt.delete(k);
    this.pending.set(ip, { tcp: appPorts(segments, fqdn, 'tcp'), udp: appPorts(segments, fqdn, 'udp') });
    this.schedule();
  }

  /** Segments changed: forget every gate (the listener decides until IPs are gated again). */
  reset(): void {
    if (this.stopped) return;
    this.epoch++;
    this.gatedAt.clear();
    this.pending.clear();
    this.enqueue(async () => {
      await run('nft', ['-f', '-'], flushGateCommands());
      this.allowed.clear();
    });
  }

  /** Resolves once every queued nft transaction has run (tests, shutdown). */
  settled(): Promise<void> {
    return this.busy;
  }

  stop(): void {
    this.stopped = true;
    this.pending.clear();
  }

  /** Coalesces the IPs noted in one turn into a single nft transaction. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = [...this.pending.entries()];
      this.pending.clear();
      const epoch = this.epoch;
      if (batch.length) this.enqueue(() => this.apply(batch, epoch));
    });
  }

  private async apply(batch: Array<[string, GatePorts]>, epoch: number): Promise<void> {
    if (epoch !== this.epoch) return;
    const changes: GateChange[] = [];
    const keys = new Map<string, string>();
    for (const [ip, ports] of batch) {
      const key = JSON.stringify(ports);
      keys.set(ip, key);
      const held = this.allowed.get(ip);
      // Same ports: only the gate is (re)created; the allowed ranges are already right.
      changes.push(held?.key === key ? { ip, ports: { tcp: [], udp: [] } } : { ip, ports, ...(held ? { previous: held.ports } : {}) });
    }
    try {
      await run('nft', ['-f', '-'], gateCommands(changes, this.timeoutSec));
    } catch (err) {
      // The transaction changed nothing; let the next connection to these IPs try again.
      for (const [ip] of batch) this.gatedAt.delete(ip);
      throw err;
    }
    for (const [ip, ports] of batch) this.allowed.set(ip, { ports, key: keys.get(ip)! });
  }

  private enqueue(job: () => Promise<unknown>): void {
    this.busy = this.busy.then(async () => {
      if (this.stopped) return;
      try {
        await job();
      } catch (err) {
        // Only an accelerator: without it the listener still refuses, a little later.
        this.opts.log.warn({ err: (err as Error).message }, 'port gate update failed');
      }
    });
  }
}
