import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import type { LogRing } from '../../common/log-ring.js';
import type { LocalApiRequest } from '../../common/localapi-schema.js';
import { parseHostPort } from '../../protocol/tls.js';
import { Agent } from '../agent.js';
import { ConfigLoader, ManagedKeyError } from '../config/loader.js';
import type { AgentConfig } from '../config/schema.js';
import type { SourceRef } from '../config/sources.js';
import { DnsServer } from '../dns/dns-server.js';
import { takeOverSystemDns, type DnsTakeover } from '../dns/os-resolver/index.js';
import { systemResolvers } from '../dns/system-resolvers.js';
import { openAgentState, type AgentState } from '../identity/agent-state.js';
import { deviceFingerprint } from '../identity/fingerprint.js';
import { HttpConnectServer } from '../intercept/http-connect.js';
import { KernelIntercept, type KernelInterceptInfo } from '../intercept/kernel/kernel-intercept.js';
import type { ProxyCounters } from '../intercept/proxy-core.js';
import { Socks5Server } from '../intercept/socks5.js';
import type { GatherOptions } from '../policy/network-facts.js';
import { TrustedNetworkMonitor, type TrustedNetworkChange } from '../policy/trusted-network-monitor.js';
import { AgentService } from '../service.js';
import { interceptTimeoutsOf, resolveTenant, type ResolvedTenant } from './runtime-config.js';
import { RuntimeDr } from './runtime-dr.js';
import { settingsList } from './settings.js';
import { TenantLogin } from './tenant-login.js';
import { TenantSlots } from './tenant-slots.js';
import type { DataPlaneChoice } from '../../../native/dataplane/dataplane-process.js';

export interface AgentRuntimeOptions {
  /** Sealed identities, journals of OS changes, last good configuration. */
  stateDir: string;
  socketPath: string;
  /** The user (local) configuration file; written by setSetting and tenant add/remove. */
  configFile: string;
  /** The administrator's source (MDM); null for none. */
  managed?: SourceRef | null;
  log: Logger;
  logs?: LogRing;
  fingerprint?: string;
  /** Device name put in certificate requests (default: the host name). */
  device?: string;
  /** Point the OS resolver at the agent DNS (root); restored on stop and after a crash. */
  osDns?: boolean;
  resolvConfPath?: string;
  /** Kernel intercept of the synthetic pool (Linux, root). */
  intercept?: boolean;
  /** Who carries intercepted TCP (KernelIntercept's dataPlane; default auto). */
  dataPlane?: DataPlaneChoice;
  /** Proxy front ends for unprivileged use. */
  socks?: string;
  httpProxy?: string;
  /** Turn the agent DNS server off (proxy-only use). */
  noDns?: boolean;
  /** Where sign-in URLs go besides the caller (see TenantLogin). */
  openUrl?: (tenant: string, url: string) => void | Promise<void>;
  loginTimeoutMs?: number;
  operatorGid?: number;
  configPollMs?: number;
  /** DR record polling faster than the configuration allows (demo, tests). */
  drPollMs?: number;
  /** Trusted-network fact gathering and polling (tests). */
  network?: { pollIntervalMs?: number; gather?: Omit<GatherOptions, 'resolvConfPath' | 'names'> };
}

export interface RuntimeReady {
  socket: string;
  dns?: string;
  socks?: string;
  httpProxy?: string;
  intercept?: KernelInterceptInfo;
  osDns?: string;
  tenants: string[];
}

/**
 * The whole agent as the system service runs it: configuration (managed > user > defaults,
 * live), sealed identities, one Z-Tunnel per enrolled tenant, DNS with synthetic IPs, the OS
 * resolver and kernel intercept, trusted-network forwarding, DR, and the local API.
 */
export class AgentRuntime extends EventEmitter<{ change: [] }> {
  private agentCore?: Agent;
  private loader!: ConfigLoader;
  private state!: AgentState;
  private slots!: TenantSlots;
  private dns?: DnsServer;
  private takeover?: DnsTakeover;
  private intercept?: KernelIntercept;
  private monitor?: TrustedNetworkMonitor;
  private dr?: RuntimeDr;
  private service?: AgentService;
  private readonly appDomains: string[] = [];
  private upstreams: readonly string[] | undefined;
  private network?: TrustedNetworkChange & { at: string };
  private readonly stops: Array<() => Promise<void> | void> = [];
  private socksFront: Socks5Server | undefined;
  private fingerprint = '';

  constructor(private readonly opts: AgentRuntimeOptions) {
    super();
  }

  /** The agent core (tunnels, routing, pool); exists once start() has read the configuration. */
  get agent(): Agent {
    if (!this.agentCore) throw new Error('the agent runtime is not started');
    return this.agentCore;
  }

  get config(): AgentConfig {
    return this.loader.config;
  }

  async start(): Promise<RuntimeReady> {
    const { opts } = this;
    const log = opts.log;
    try {
      await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
      this.fingerprint = opts.fingerprint ?? deviceFingerprint();
      // Fails with "enrolled on another device — enroll again" before anything is changed.
      this.state = await openAgentState(opts.stateDir, { fingerprint: this.fingerprint });

      this.loader = new ConfigLoader({ managed: opts.managed, userFile: opts.configFile, lastGoodFile: join(opts.stateDir, 'config.last-good.json'), pollIntervalMs: opts.configPollMs, log: log.child({ component: 'config' }) });
      const cfgState = await this.loader.start();
      this.stops.push(() => this.loader.close());
      if (cfgState.lastError) log.error({ file: cfgState.lastError.file }, `configuration: ${cfgState.lastError.message} (using the last good configuration)`);
      const config = cfgState.config;
      this.agentCore = new Agent(log.child({ component: 'agent' }), { poolCidr: config.dns.poolCidr });
      this.stops.push(() => this.agent.stop());
      this.agent.on('change', () => this.onAgentChange());

      const login = new TenantLogin({ log: log.child({ component: 'login' }), openUrl: opts.openUrl, timeoutMs: opts.loginTimeoutMs });
      this.slots = new TenantSlots({ agent: this.agent, state: this.state, fingerprint: this.fingerprint, device: opts.device ?? hostname(), log: log.child({ component: 'tenants' }), login, dr: () => this.dr?.controller });
      this.slots.on('change', () => this.emit('change'));
      this.stops.push(() => this.slots.stop());

      await this.startMonitor(config);
      await this.reconcileTenants(config);
      const dr = new RuntimeDr({
        state: this.state,
        log,
        pollMs: opts.drPollMs,
        onReplaced: () => {
          this.slots.reattachDr();
          this.emit('change');
        },
        onChange: () => this.emit('change'),
      });
      this.dr = dr;
      await dr.restart(config);
      this.stops.push(() => dr.restart(undefined));

      const ready: RuntimeReady = { socket: opts.socketPath, tenants: this.slots.ids };
      if (!opts.noDns) ready.dns = await this.startDns(config);
      if (opts.osDns && this.dns) ready.osDns = await this.startOsDns(config);
      if (opts.intercept) {
        const intercept = new KernelIntercept({ agent: this.agent, log: log.child({ component: 'intercept' }), stateDir: opts.stateDir, timeouts: interceptTimeoutsOf(config), dataPlane: opts.dataPlane });
        this.stops.push(() => intercept.stop());
        ready.intercept = await intercept.start();
        this.intercept = intercept;
      }
      if (opts.socks) {
        const socks = new Socks5Server({ dialer: this.agent.dial, log: log.child({ component: 'socks5' }) });
        const a = await socks.start(parseHostPort(opts.socks, '--socks'));
        this.socksFront = socks;
        this.stops.push(() => socks.close());
        ready.socks = `${a.address}:${a.port}`;
      }
      if (opts.httpProxy) {
        const proxy = new HttpConnectServer({ dialer: this.agent.dial, log: log.child({ component: 'http-connect' }) });
        const a = await proxy.start(parseHostPort(opts.httpProxy, '--http-proxy'));
        this.stops.push(() => proxy.close());
        ready.httpProxy = `${a.address}:${a.port}`;
      }

      this.loader.on('change', (c) => void this.onConfigChange(c.config, c.changedKeys));
      this.loader.on('invalid', () => this.emit('change'));
      this.loader.on('valid', () => this.emit('change'));

      this.service = this.makeService();
      await this.service.start();
      this.stops.push(() => this.service?.stop());
      return ready;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops everything and puts the OS back (DNS, routes, rules); idempotent. */
  async stop(): Promise<void> {
    for (const s of this.stops.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        this.opts.log.error({ err: (err as Error).message }, 'error while stopping');
      }
    }
  }

  /** The SOCKS5 front end's connection counters, when it runs. */
  get socksCounters(): ProxyCounters | undefined {
    return this.socksFront?.counters;
  }

  /** Waits until every enrolled, enabled tenant has its Z-Tunnel up. */
  async waitConnected(timeoutMs = 15_000): Promise<void> {
    await Promise.all(this.agent.tenants.filter((t) => t.enabled).map((t) => t.tunnel.waitConnected(timeoutMs)));
  }

  /** Changes a user setting as the local API does (the demo configures DR this way). */
  async setSetting(key: string, value: unknown): Promise<void> {
    await this.guard(() => this.loader.setUserValue(key, value));
  }

  /** Starts a sign-in for a tenant; resolves with the URL the user's browser must open. */
  login(tenant: string): Promise<string> {
    return this.slots.startLogin(tenant);
  }

  /** The configured tenants with their CA read; those that cannot be read are kept as they run. */
  private async reconcileTenants(config: AgentConfig): Promise<void> {
    const wanted: ResolvedTenant[] = [];
    const keep: string[] = [];
    for (const t of config.tenants) {
      try {
        wanted.push(await resolveTenant(t));
      } catch (err) {
        keep.push(t.id);
        this.opts.log.error({ tenant: t.id, err: (err as Error).message }, 'tenant configuration unreadable: left as it was');
      }
    }
    await this.slots.reconcile(wanted, keep);
  }

  private async startMonitor(config: AgentConfig): Promise<void> {
    const monitor = new TrustedNetworkMonitor({
      criteria: config.trustedNetwork,
      resolvConfPath: this.opts.resolvConfPath,
      pollIntervalMs: this.opts.network?.pollIntervalMs,
      gather: { ...this.opts.network?.gather, dnsServers: () => (this.takeover ? this.upstreams : undefined) },
      log: this.opts.log.child({ component: 'network' }),
    });
    monitor.on('change', (c) => this.onNetwork(c));
    this.stops.push(() => monitor.close());
    this.monitor = monitor;
    this.onNetwork(await monitor.start());
  }

  private onNetwork(c: TrustedNetworkChange): void {
    this.network = { ...c, at: new Date().toISOString() };
    this.slots.setTrusted(c.trusted);
    this.emit('change');
  }

  private async startDns(config: AgentConfig): Promise<string> {
    const { host, port } = parseHostPort(config.dns.listen, 'dns.listen');
    const dns = new DnsServer({
      host,
      port,
      pool: this.agent.pool,
      appFor: (name) => this.agent.appFor(name),
      reachability: (t, fqdn) => this.agent.reachable(t, fqdn),
      upstreams: this.opts.osDns ? [] : await systemResolvers(this.opts.resolvConfPath),
      searchDomains: config.dns.searchDomains,
      domainValidation: config.dns.domainValidation,
      logger: this.opts.log.child({ component: 'dns' }),
    });
    const bound = await dns.start();
    this.stops.push(() => dns.close());
    this.dns = dns;
    return `${bound.udp.address}:${bound.udp.port}`;
  }

  private async startOsDns(config: AgentConfig): Promise<string> {
    const { host } = parseHostPort(config.dns.listen, 'dns.listen');
    this.refreshAppDomains();
    const takeover = await takeOverSystemDns({
      stateDir: this.opts.stateDir,
      agentAddress: host,
      // Kept by reference: refreshAppDomains edits it in place and a recheck re-applies it.
      appDomains: this.appDomains,
      searchDomains: config.dns.searchDomains,
      log: this.opts.log.child({ component: 'os-dns' }),
      resolvConfPath: this.opts.resolvConfPath,
      onUpstreams: (u) => {
        this.upstreams = u;
        this.dns?.setUpstreams(u);
        void this.monitor?.refresh('resolv-conf');
      },
    });
    this.takeover = takeover;
    this.stops.push(() => takeover.release());
    return takeover.manager;
  }

  /** The app domains split DNS routes to the agent: every segment domain, wildcards as their parent. */
  private refreshAppDomains(): boolean {
    const domains = [...new Set(this.agent.tenants.flatMap((t) => t.segments.flatMap((s) => s.domains.map((d) => d.replace(/^\*\./, '')))))].sort();
    if (domains.length === this.appDomains.length && domains.every((d, i) => d === this.appDomains[i])) return false;
    this.appDomains.splice(0, this.appDomains.length, ...domains);
    return true;
  }

  private onAgentChange(): void {
    if (this.refreshAppDomains() && this.takeover) void this.takeover.recheck().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'os-dns: re-apply failed'));
    this.emit('change');
  }

  private async onConfigChange(config: AgentConfig, changed: string[]): Promise<void> {
    const { log } = this.opts;
    log.info({ keys: changed }, 'configuration changed');
    try {
      if (changed.some((k) => k.startsWith('dns.'))) this.dns?.setSearch({ searchDomains: config.dns.searchDomains, domainValidation: config.dns.domainValidation });
      if (changed.some((k) => k.startsWith('trustedNetwork'))) await this.monitor?.setCriteria(config.trustedNetwork);
      if (changed.some((k) => k.startsWith('tenants'))) await this.reconcileTenants(config);
      if (changed.some((k) => k.startsWith('tenants') || k === 'dr' || k.startsWith('dr.'))) await this.dr?.restart(config);
      const restartOnly = changed.filter((k) => k === 'dns.listen' || k === 'dns.poolCidr' || k.startsWith('timeouts.tcp') || k.startsWith('timeouts.udp'));
      if (restartOnly.length) log.warn({ keys: restartOnly }, 'these settings take effect when the agent restarts');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot apply the configuration change');
    }
    this.emit('change');
  }

  private managed(key: string): boolean {
    return this.loader.managedKeyFor(key) !== undefined;
  }

  private makeService(): AgentService {
    // MDM pins tenants as a whole list: then none can be added, removed or toggled here.
    const flags = (): { managed: boolean; canToggle: boolean } => {
      const managed = this.managed('tenants');
      return { managed, canToggle: !managed };
    };
    return new AgentService({
      agent: this.agent,
      log: this.opts.log.child({ component: 'service' }),
      socketPath: this.opts.socketPath,
      stateDir: this.opts.stateDir,
      fingerprintHash: this.fingerprint,
      operatorGid: this.opts.operatorGid,
      syntheticIps: (t) => this.agent.syntheticIps(t),
      reauth: (tenant) => this.slots.startLogin(tenant),
      logs: this.opts.logs,
      changes: this,
      extras: {
        tenant: (id) => this.slots.statusExtras(id, flags().managed, flags().canToggle),
        pendingTenants: () => this.slots.pending(flags),
        agent: () => ({
          safeMode: this.agent.tenants.some((t) => this.dr?.controller?.isActive(t.id)),
          config: { managedKeys: this.loader.state.managedKeys, lastError: this.loader.state.lastError },
          network: this.network && { type: this.network.trusted ? 'trusted' : 'untrusted', matched: this.network.results.filter((r) => r.holds).map((r) => r.criterion), checkedAt: this.network.at },
        }),
      },
      tenants: {
        add: (req) => this.addTenant(req),
        remove: (id) => this.setTenants(this.loader.config.tenants.filter((t) => t.id !== id)),
        setEnabled: (id, enabled) => this.setTenants(this.loader.config.tenants.map((t) => (t.id === id ? { ...t, enabled } : t))),
      },
      settings: {
        list: () => settingsList(this.loader.config, (k) => this.managed(k)),
        set: async (key, value) => {
          if (key === 'tenants' || key.startsWith('tenants.')) throw Object.assign(new Error(`${key}: change tenants with the tenant requests`), { status: 400, code: 'invalid' });
          await this.guard(() => this.loader.setUserValue(key, value));
          return value;
        },
      },
    });
  }

  private async addTenant(req: LocalApiRequest<'addTenant'>): Promise<void> {
    if (this.managed('tenants')) throw managedError('tenants', this.loader.managedKeyFor('tenants')!);
    const cfg: ResolvedTenant = { id: req.tenant, name: req.name, edge: req.edge, enroll: req.enroll, serverName: req.serverName, caPem: req.caPem, enabled: true, forwardingProfile: 'always' };
    // Enroll first: a tenant that cannot enroll does not enter the configuration.
    await this.slots.enrollWithToken(cfg, req.token);
    await this.setTenants([...this.loader.config.tenants, { id: cfg.id, name: cfg.name, cloud: { edge: cfg.edge, enroll: cfg.enroll, serverName: cfg.serverName, caPem: cfg.caPem }, forwardingProfile: 'always', enabled: true }]);
  }

  /** Tenants live in the configuration: the change is saved, then reconciled like any config change. */
  private async setTenants(tenants: AgentConfig['tenants']): Promise<void> {
    await this.guard(() => this.loader.setUserValue('tenants', tenants));
    await this.reconcileTenants(this.loader.config);
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ManagedKeyError) throw managedError(err.key, err.managedKey, err.message);
      throw Object.assign(err as Error, { status: 400, code: 'invalid' });
    }
  }
}

function managedError(key: string, managedKey: string, message = `${key}: cannot be changed, ${managedKey} is managed by your administrator`): Error {
  return Object.assign(new Error(message), { status: 409, code: 'managed' });
}
