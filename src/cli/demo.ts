import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../common/log.js';
import type { LogRing } from '../common/log-ring.js';
import type { AgentConfigInput } from '../agent/config/schema.js';
import { AgentRuntime } from '../agent/runtime/runtime.js';
import { parseHostPort } from '../protocol/tls.js';
import { ScriptedBrowser } from './demo-browser.js';
import { startDemoApps, type DemoApps } from './demo-apps.js';
import { DEMO_POLL_MS, markDrSegments, startDemoDr } from './demo-dr.js';
import { startUi } from './ui-launch.js';
import { startDemoTenant, type DemoTenant, type DemoTenantSpec } from './demo-tenant.js';

export interface DemoOptions {
  dataDir?: string;
  socks?: string;
  httpProxy?: string;
  /** Agent DNS listener; unset means no DNS (the OS is never touched by the demo without --tun). */
  dns?: string;
  /** Intercept mode: every port of every synthetic IP through the kernel (Linux, root); names via --dns. */
  tun?: boolean;
  /** Adds the second tenant `partner` with its own cloud, connector and wiki. */
  partner?: boolean;
  /** Disaster recovery: DR domain on a local DNS server, a private service edge, DR apps. */
  dr?: boolean;
  /** Where to serve the UI for a browser when Electron is absent; `headless` turns the UI off. */
  ui?: string;
  headless?: boolean;
  log: Logger;
  /** The agent's recent log lines, for the UI's diagnostics view. */
  logs?: LogRing;
}

export interface RunningDemo {
  ready: Record<string, unknown>;
  stop(): Promise<void>;
}

export const DEMO_USER = 'alice@demo.internal';

function demoSpec(apps: DemoApps): DemoTenantSpec {
  return {
    id: 'demo',
    name: 'Demo Corp',
    user: DEMO_USER,
    groups: ['staff'],
    segments: [
      { id: 'intranet', name: 'Intranet', domains: ['intranet.demo.internal'], tcpPorts: [{ from: 80, to: 80 }] },
      { id: 'echo', name: 'Echo', domains: ['echo.demo.internal'], tcpPorts: [{ from: 7, to: 7 }] },
      { id: 'apps', name: 'Apps', domains: ['*.apps.demo.internal'], tcpPorts: [{ from: 8080, to: 8080 }] },
    ],
    servers: {
      'intranet.demo.internal:80': `127.0.0.1:${apps.intranet}`,
      'echo.demo.internal:7': `127.0.0.1:${apps.echo}`,
      '*.apps.demo.internal:8080': `127.0.0.1:${apps.apps}`,
    },
  };
}

/** `--partner`: a second organisation with its own cloud, connector and wiki. */
function partnerSpec(apps: DemoApps): DemoTenantSpec {
  return {
    id: 'partner',
    name: 'Partner Inc',
    user: 'alice@partner.internal',
    groups: ['contractors'],
    segments: [{ id: 'wiki', name: 'Partner wiki', domains: ['wiki.partner.internal'], tcpPorts: [{ from: 80, to: 80 }] }],
    servers: { 'wiki.partner.internal:80': `127.0.0.1:${apps.partnerWiki}` },
  };
}

/** The agent's user configuration for the demo tenants (the file a user or IT would write). */
function agentConfig(tenants: DemoTenant[], opts: DemoOptions): AgentConfigInput {
  return {
    tenants: tenants.map((t) => ({ id: t.spec.id, name: t.spec.name, cloud: { edge: t.cloud.tunnel, enroll: t.cloud.enroll, serverName: 'localhost', caFile: t.cloud.caFile } })),
    dns: { ...(opts.dns ? { listen: opts.dns } : {}), searchDomains: ['demo.internal'] },
  };
}

/** Polls until every demo tenant has its Z-Tunnel up (the first sign-in runs in the background). */
async function waitAllConnected(runtime: AgentRuntime, ids: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const up = runtime.agent.tenants.filter((t) => t.tunnel.status.state === 'connected').map((t) => t.id);
    if (ids.every((id) => up.includes(id))) return;
    if (Date.now() > deadline) throw new Error(`demo tenants not connected within ${timeoutMs / 1000} s: ${ids.filter((id) => !up.includes(id)).join(', ')}`);
    await delay(50);
  }
}

/**
 * `zcc demo`: clouds (with their demo IdPs), connectors and demo apps, and the agent runtime
 * the service runs, configured for them and signed in as the demo user through the IdP.
 */
export async function startDemo(opts: DemoOptions): Promise<RunningDemo> {
  const { log } = opts;
  const dataDir = resolve(opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'zcc-demo-'))));
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const stops: Array<() => Promise<void> | void> = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const apps = await startDemoApps();
    stops.push(() => apps.close());

    const specs = [demoSpec(apps), ...(opts.partner ? [partnerSpec(apps)] : [])];
    if (opts.dr) markDrSegments(specs[0]!);
    const tenants: DemoTenant[] = [];
    for (const spec of specs) {
      const t = await startDemoTenant(spec, dataDir, log);
      stops.push(() => t.stop());
      tenants.push(t);
    }

    const agentDir = join(dataDir, 'agent');
    await mkdir(agentDir, { recursive: true, mode: 0o700 });
    const configFile = join(agentDir, 'config.json');
    await writeFile(configFile, `${JSON.stringify(agentConfig(tenants, opts), null, 2)}\n`, { mode: 0o600 });
    // The first sign-in of each tenant is done by the demo user's scripted browser; later ones
    // (re-authentication from the UI or `zcc login`) by whoever opens the URL.
    const autoLogin = new Set(tenants.map((t) => t.spec.id));
    const runtime = new AgentRuntime({
      stateDir: agentDir,
      socketPath: join(agentDir, 'localapi.sock'),
      configFile,
      managed: null,
      log: log.child({ proc: 'agent' }),
      logs: opts.logs,
      device: `${hostname()}-demo`,
      noDns: !opts.dns && !opts.tun,
      osDns: opts.tun,
      intercept: opts.tun,
      socks: opts.socks ?? '127.0.0.1:1080',
      httpProxy: opts.httpProxy ?? '127.0.0.1:3128',
      drPollMs: DEMO_POLL_MS,
      configPollMs: 0,
      openUrl: async (tenant, url) => {
        const t = tenants.find((x) => x.spec.id === tenant);
        if (!t || !autoLogin.delete(tenant)) return;
        await new ScriptedBrowser(t.cloud.caPem).login(url, t.spec.user, t.password);
      },
    });
    stops.push(() => runtime.stop());
    const ready = await runtime.start();
    for (const t of tenants) {
      if (runtime.agent.tenants.some((x) => x.id === t.spec.id)) autoLogin.delete(t.spec.id); // enrolled by an earlier run in this data dir
      else await runtime.login(t.spec.id);
    }
    await waitAllConnected(runtime, tenants.map((t) => t.spec.id));

    // After enrollment, so the DR bundle carries this device's sign-in.
    const dr = opts.dr ? await startDemoDr({ tenant: tenants[0]!, dataDir, log }) : undefined;
    if (dr) {
      stops.push(() => dr.stop());
      await runtime.setSetting('dr', dr.agentDr);
    }

    let uiUrl: string | undefined;
    if (!opts.headless) {
      const ui = await startUi({ listen: parseHostPort(opts.ui ?? '127.0.0.1:0', '--ui'), socketPath: ready.socket, outDir: join(dataDir, 'ui'), log });
      stops.push(() => ui.close());
      uiUrl = ui.url;
    }

    return {
      ready: {
        ...(dr ? { dr: dr.ready } : {}),
        ui: uiUrl,
        dns: ready.dns,
        ...(ready.intercept ? { tun: ready.intercept, osDns: ready.osDns } : {}),
        dataDir,
        localApi: ready.socket,
        socks: ready.socks,
        httpProxy: ready.httpProxy,
        edge: tenants[0]!.cloud.tunnel,
        enroll: tenants[0]!.cloud.enroll,
        login: { tenant: tenants[0]!.spec.id, user: tenants[0]!.spec.user, password: tenants[0]!.password },
        tenants: tenants.map((t) => ({ id: t.spec.id, edge: t.cloud.tunnel, user: t.spec.user })),
        apps: [
          'http://intranet.demo.internal/',
          'echo.demo.internal:7',
          'http://<any>.apps.demo.internal:8080/',
          ...(opts.partner ? ['http://wiki.partner.internal/'] : []),
        ],
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
