import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Logger } from '../../../common/log.js';
import { Backoff } from '../../../protocol/backoff.js';
import { encodeFrame, FrameDecoder } from '../../../protocol/frame-codec.js';
import { parseHostPort } from '../../../protocol/tls.js';
import { CAPABILITIES, RESET_REQUEST_CAPABILITY } from '../../../protocol/version.js';
import { DataplaneProcess, type DataplaneStats } from '../../../../native/dataplane/dataplane-process.js';
import type { Agent, AgentTenant } from '../../agent.js';
import { appPorts } from './app-ports.js';
import type { PortGate } from './port-gate.js';
import type { InterceptTimeouts } from './timeouts.js';

/** What the native plane does not do, so its hello does not announce it (protocol.md §4). */
const NATIVE_CAPABILITIES = CAPABILITIES.filter((c) => c !== RESET_REQUEST_CAPABILITY);

interface TunnelSlot {
  id: number;
  state: 'connecting' | 'up' | 'down';
  /** The edge it was opened to: the one the tenant's own Z-Tunnel was connected to then. */
  endpoint: string;
  backoff: Backoff;
  retry: NodeJS.Timeout | null;
  decoder: FrameDecoder;
}

/**
 * TCP interception through the native data plane (native/dataplane): the process owns the
 * listener TPROXY feeds and one Z-Tunnel per tenant turned on, opened once the tenant's own
 * Z-Tunnel is up. This side keeps it told: tunnels to open (credentials, hello), and the route
 * of every synthetic IP (tenant, app name, the TCP ports its segments allow), pushed as the
 * pool hands IPs out and as segments change.
 */
export class NativeTcp {
  private readonly slots = new Map<string, TunnelSlot>();
  private readonly routes = new Map<string, string>();
  private nextId = 0;
  private stopped = false;
  private readonly onChange = (): void => this.sync();

  private constructor(
    private readonly plane: DataplaneProcess,
    private readonly agent: Agent,
    private readonly log: Logger,
    private readonly gate: PortGate | undefined,
  ) {
    plane.on('up', (id) => this.onUp(id));
    plane.on('down', (id, reason) => this.onDown(id, reason));
    plane.on('control', (id, bytes) => this.onControl(id, bytes));
    plane.on('use', (ip) => this.onUse(ip));
    plane.on('error', (line) => log.warn({ line }, 'native data plane refused a command'));
    plane.on('exit', (code) => {
      if (!this.stopped) log.error({ code }, 'native data plane exited: intercepted TCP connections are refused until restart');
    });
    agent.on('change', this.onChange);
    agent.pool.onMapping = (fqdn, tenant, ip) => this.route(ip, fqdn, tenant);
  }

  static async start(agent: Agent, log: Logger, timeouts: InterceptTimeouts, gate?: PortGate): Promise<NativeTcp> {
    const plane = await DataplaneProcess.start({ connectMs: timeouts.connectMs, halfClosedIdleMs: timeouts.tcpHalfClosedIdleMs, openIdleMs: timeouts.tcpOpenIdleMs });
    const n = new NativeTcp(plane, agent, log, gate);
    n.sync();
    return n;
  }

  get port(): number {
    return this.plane.port;
  }

  stats(): Promise<DataplaneStats> {
    return this.plane.stats();
  }

  /** Whether the native Z-Tunnel of `tenant` is up. */
  isUp(tenant: string): boolean {
    return this.slots.get(tenant)?.state === 'up';
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.agent.off('change', this.onChange);
    this.agent.pool.onMapping = null;
    for (const s of this.slots.values()) if (s.retry) clearTimeout(s.retry);
    await this.plane.stop();
  }

  /** Tunnels for the tenants whose own Z-Tunnel is up; routes for every mapped IP. */
  private sync(): void {
    if (this.stopped) return;
    const enabled = this.agent.tenants.filter((t) => t.enabled);
    for (const t of enabled) {
      const slot = this.slots.get(t.id);
      if (t.tunnel.status.state !== 'connected') continue;
      // Disaster recovery moved the tenant's Z-Tunnel to a private service edge, or back: follow it.
      if (!slot || slot.endpoint !== endpointOf(t)) {
        if (slot?.retry) clearTimeout(slot.retry);
        if (slot) slot.retry = null;
        void this.open(t);
      }
    }
    for (const [tenant, slot] of this.slots) {
      if (enabled.some((t) => t.id === tenant)) continue;
      if (slot.retry) clearTimeout(slot.retry);
      this.plane.close(slot.id);
      this.slots.delete(tenant);
    }
    for (const m of this.agent.pool.snapshot()) this.route(m.ip, m.fqdn, m.tenant);
  }

  /** Runs for every new pool mapping (the DNS path): the agent's cached tenant routing, no lists built. */
  private route(ip: string, fqdn: string, tenant: string): void {
    const owner = this.agent.appFor(fqdn)?.tenant === tenant ? this.agent.enabledTenant(tenant) : undefined;
    const slot = this.slots.get(tenant);
    if (!owner || !slot) {
      if (this.routes.delete(ip)) this.plane.unroute(ip);
      return;
    }
    const ranges = appPorts(owner.segments, fqdn, 'tcp');
    const key = `${slot.id} ${fqdn} ${ranges.map((r) => `${r.from}-${r.to}`).join(',')}`;
    if (this.routes.get(ip) === key) return;
    this.routes.set(ip, key);
    this.plane.route(ip, slot.id, fqdn, ranges);
  }

  private async open(t: AgentTenant): Promise<void> {
    // A fresh decoder per connect: a torn-down stream may have left half a frame.
    const decoder = new FrameDecoder(`native Z-Tunnel ${t.id} control`);
    const slot = this.slots.get(t.id) ?? { id: this.nextId++, state: 'connecting', endpoint: '', backoff: new Backoff(), retry: null, decoder };
    this.slots.set(t.id, slot);
    slot.state = 'connecting';
    slot.decoder = decoder;
    const { edge, serverName } = t.tunnel.endpoint;
    slot.endpoint = endpointOf(t);
    try {
      const { host, port } = parseHostPort(edge, 'edge address');
      const address = isIPv4(host) ? host : (await lookup(host, { family: 4 })).address;
      const hello = encodeFrame(t.tunnel.hello(NATIVE_CAPABILITIES));
      if (this.stopped || this.slots.get(t.id) !== slot) return;
      this.plane.tunnel(slot.id, {
        host: address,
        port,
        serverName,
        caPem: t.settings.caPem,
        certPem: t.settings.identity.certPem,
        keyPem: t.settings.identity.keyPem,
        hello,
      });
    } catch (err) {
      this.onDown(slot.id, (err as Error).message);
    }
  }

  private slotOf(id: number): [string, TunnelSlot] | undefined {
    for (const entry of this.slots) if (entry[1].id === id) return entry;
    return undefined;
  }

  private onUp(id: number): void {
    const entry = this.slotOf(id);
    if (!entry) return;
    entry[1].state = 'up';
    entry[1].backoff.reset();
    this.log.info({ tenant: entry[0] }, 'native Z-Tunnel up');
    this.sync();
  }

  private onDown(id: number, reason: string): void {
    const entry = this.slotOf(id);
    if (!entry || this.stopped) return;
    const [tenant, slot] = entry;
    slot.state = 'down';
    const wait = slot.backoff.next();
    this.log.warn({ tenant, reason, retryInMs: wait }, 'native Z-Tunnel down');
    slot.retry = setTimeout(() => {
      slot.retry = null;
      const t = this.agent.enabledTenant(tenant);
      if (t && this.slots.get(tenant) === slot) void this.open(t);
    }, wait);
    slot.retry.unref();
  }

  /**
   * The process accepted a connection to `ip` (at most every 10 s per IP): its pool mapping is
   * used (a touch: the process, not the pool, holds the connection) and the port gate learns the
   * app's ports, so the kernel refuses the others before their handshake, as for the Node plane.
   */
  private onUse(ip: string): void {
    const mapping = this.agent.pool.acquire(ip);
    if (!mapping) return;
    this.agent.pool.release(ip);
    const tenant = this.agent.enabledTenant(mapping.tenant);
    if (tenant) this.gate?.note(ip, mapping.fqdn, tenant.segments);
  }

  /**
   * The edge's control messages on the native Z-Tunnel: its hello says whether it resets
   * microtunnels at our request (then the process asks instead of sending RST_STREAM); an error
   * is worth a line; the rest (segments) the JS Z-Tunnel already has.
   */
  private onControl(id: number, bytes: Buffer): void {
    const entry = this.slotOf(id);
    if (!entry) return;
    try {
      for (const f of entry[1].decoder.push(bytes)) {
        const m = f.ok ? (f.value as { type?: string; code?: string; message?: string; capabilities?: unknown }) : undefined;
        if (m?.type === 'hello' && Array.isArray(m.capabilities) && m.capabilities.includes(RESET_REQUEST_CAPABILITY)) this.plane.peerResets(id);
        if (m?.type === 'error') this.log.warn({ tenant: entry[0], code: m.code, message: m.message }, 'edge error on the native Z-Tunnel');
      }
    } catch (err) {
      this.log.warn({ tenant: entry[0], err: (err as Error).message }, 'unreadable control stream on the native Z-Tunnel');
      this.plane.close(id);
    }
  }
}

function endpointOf(t: AgentTenant): string {
  const { edge, serverName } = t.tunnel.endpoint;
  return `${edge} ${serverName}`;
}
