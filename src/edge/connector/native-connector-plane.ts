import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Logger } from '../../common/log.js';
import type { HelloMessage } from '../../protocol/control-messages.js';
import { parseHostPort, type TlsIdentity } from '../../protocol/tls.js';
import { DataplaneProcess, type DataplaneStats } from '../../../native/dataplane/dataplane-process.js';
import { pinnedCa, type ConnectorConfig } from './connector-config.js';
import { NativeEdgeLink } from './native-edge-link.js';
import type { TargetResolver } from './target-resolver.js';

/** The native process's tunnel slots (MAX_TUNNELS in native/dataplane/dataplane.h). */
const TUNNEL_SLOTS = 64;

/**
 * The connector's native data plane (ConnectorConfig.dataPlane): the zcc-dataplane process in
 * its connector role, which carries the Z-Tunnel and every microtunnel. This side dials it a
 * NativeEdgeLink per connect and tells it where apps are: it answers the process's lookups and
 * pushes what every probe resolved, so an open usually finds its address already there.
 */
export class NativeConnectorPlane {
  private nextId = 0;
  private stopped = false;

  private constructor(
    private readonly process: DataplaneProcess,
    private readonly cfg: ConnectorConfig,
    private readonly resolver: TargetResolver,
    private readonly log: Logger,
  ) {
    process.on('resolve', (host, port) => void this.answer(host, port));
    process.on('error', (line) => log.warn({ line }, 'native data plane refused a command'));
    process.on('exit', (code) => {
      if (!this.stopped) log.error({ code }, 'native data plane exited: this connector serves no microtunnel until restarted');
    });
  }

  static async start(cfg: ConnectorConfig, resolver: TargetResolver, log: Logger): Promise<NativeConnectorPlane> {
    return new NativeConnectorPlane(await DataplaneProcess.startConnector({ connectMs: cfg.connectTimeoutMs }), cfg, resolver, log);
  }

  /** A Z-Tunnel to the edge of `cfg.cloud`, carried by the process. */
  async connect(identity: TlsIdentity, hello: HelloMessage): Promise<NativeEdgeLink> {
    const { host, port } = parseHostPort(this.cfg.cloud.tunnel, 'cloud.tunnel');
    const address = net.isIPv4(host) ? host : (await lookup(host, { family: 4 })).address;
    const tunnel = { host: address, port, serverName: this.cfg.cloud.serverName, caPem: pinnedCa(this.cfg), certPem: identity.certPem, keyPem: identity.keyPem };
    return new NativeEdgeLink(this.process, this.nextId++ % TUNNEL_SLOTS, tunnel, hello, this.log, `edge ${this.cfg.cloud.tunnel}`);
  }

  /** A probe found host:port at `addr`: the open that follows finds it in the process's cache. */
  resolved(host: string, port: number, addr: { host: string; port: number }): void {
    if (net.isIPv4(addr.host)) this.process.target(host, port, addr.host, addr.port, this.ttl(host, port));
  }

  stats(): Promise<DataplaneStats> {
    return this.process.stats();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.process.stop();
  }

  /** Where the process should dial host:port; it holds the open until told. */
  private async answer(host: string, port: number): Promise<void> {
    try {
      const addr = await this.resolveIPv4(host, port);
      this.process.target(host, port, addr.host, addr.port, this.ttl(host, port));
      this.log.debug({ target: `${host}:${port}`, address: `${addr.host}:${addr.port}` }, 'app address for the native data plane');
    } catch (err) {
      this.log.info({ target: `${host}:${port}`, err: (err as Error).message }, 'cannot resolve app');
      this.process.unresolved(host, port, (err as Error).message);
    }
  }

  /** How long the process keeps an address: for good (0) when configured as an IPv4 address, else resolveCacheMs. */
  private ttl(host: string, port: number): number {
    const fixed = this.resolver.resolveStatic(host, port);
    return fixed && net.isIPv4(fixed.host) ? 0 : this.cfg.resolveCacheMs;
  }

  /** The process dials IPv4 addresses only: a static entry naming a host is looked up. */
  private async resolveIPv4(host: string, port: number): Promise<{ host: string; port: number }> {
    const addr = await this.resolver.resolve(host, port);
    if (net.isIPv4(addr.host)) return addr;
    if (net.isIPv6(addr.host)) throw new Error(`${addr.host}: the native data plane dials IPv4 only`);
    return { host: (await lookup(addr.host, { family: 4 })).address, port: addr.port };
  }
}
