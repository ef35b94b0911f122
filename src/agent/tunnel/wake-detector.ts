import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';

export interface WakeDetectorOptions {
  intervalMs?: number;
  /** How far the wall clock may run ahead of the monotonic clock before we call it a wake. */
  jumpMs?: number;
  now?: () => number;
  monotonic?: () => number;
  interfaces?: () => string;
}

/** Signature of the machine's addresses: changes when a network comes or goes. */
export function interfaceSignature(): string {
  const out: string[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal) out.push(`${name}/${a.address}`);
  }
  return out.sort().join(',');
}

/**
 * Notices the two events after which an open Z-Tunnel is probably dead: the machine waking up
 * (the wall clock jumped against the monotonic one, which stops while suspended) and the set
 * of network addresses changing.
 */
export class WakeDetector extends EventEmitter<{ wake: [number]; 'network-change': [string] }> {
  private timer: NodeJS.Timeout | null = null;
  private lastWall = 0;
  private lastMono = 0;
  private lastNet = '';
  private primed = false;

  constructor(private readonly opts: WakeDetectorOptions = {}) {
    super();
  }

  start(): void {
    const now = this.opts.now ?? Date.now;
    const mono = this.opts.monotonic ?? (() => performance.now());
    const nets = this.opts.interfaces ?? interfaceSignature;
    this.tick(now(), mono(), nets());
    this.timer = setInterval(() => this.tick(now(), mono(), nets()), this.opts.intervalMs ?? 2_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.primed = false;
  }

  /** One observation; public so tests can drive the clocks directly. */
  tick(wall: number, mono: number, net: string): void {
    if (!this.primed) {
      // The first observation is the baseline; nothing has changed yet.
      [this.primed, this.lastWall, this.lastMono, this.lastNet] = [true, wall, mono, net];
      return;
    }
    const skew = wall - this.lastWall - (mono - this.lastMono);
    this.lastWall = wall;
    this.lastMono = mono;
    if (skew > (this.opts.jumpMs ?? 5_000)) this.emit('wake', skew);
    if (net !== this.lastNet) {
      this.lastNet = net;
      this.emit('network-change', net);
    }
  }
}
