// The whole zero-trust path of the `path` and `dns` benchmarks as separate processes, all on
// loopback and ephemeral ports:
//
//   client (the benchmark process) → agent (world-runtime.ts: `zcc agent`'s runtime, SOCKS5;
//   or, for the DNS benchmark, world-agent.ts: the agent core, SOCKS5, DNS) ⇒ Z-Tunnel (mTLS 1.3,
//   HTTP/2) ⇒ edge + connector (world-cloud.ts, the test harness's reference cloud) → apps
//   (world-apps.ts)
//
// The agent has a process to itself, so no load generator or server shares its event loop.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAgentState } from '../src/agent/identity/agent-state.js';
import { deviceFingerprint } from '../src/agent/identity/fingerprint.js';
import { enrollWithToken } from '../src/agent/identity/token-enroll.js';
import { bundleEntry } from './bundle.js';
import { forkTs, isMessage, nextMessage, stopChild } from './lib.js';
import type { AgentMemory, AgentReady } from './agent-memory.js';
import type { AgentArgs } from './world-agent.js';
import type { AppsCounts, AppsReady } from './world-apps.js';
import type { CloudArgs, CloudReady } from './world-cloud.js';
import type { RuntimeArgs } from './world-runtime.js';

const here = (f: string): string => new URL(f, import.meta.url).pathname;

/**
 * The agent and the cloud run bundled on plain Node, as installed ones run (bundle.ts): the tsx
 * loader alone holds about 40 MB of resident memory, which would be counted as the agent's.
 */
const bundle = (entry: string, like?: 'sea'): ReturnType<typeof bundleEntry> => bundleEntry(here(`./${entry}`), { like });

const serviceUnit = (): string => readFileSync(here('../resources/systemd/zcc-agent.service'), 'utf8');

/** NODE_OPTIONS of the agent's system service (resources/systemd/zcc-agent.service), as flags. */
export function serviceNodeOptions(): string[] {
  return /^Environment=NODE_OPTIONS=(.*)$/m.exec(serviceUnit())?.[1]?.split(' ').filter(Boolean) ?? [];
}

/** The other environment variables the agent's system service sets (e.g. glibc's MALLOC_ARENA_MAX). */
export function serviceEnvironment(): Record<string, string> {
  const vars = [...serviceUnit().matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)].map((m) => [m[1] ?? '', m[2] ?? ''] as const);
  return Object.fromEntries(vars.filter(([k]) => k !== 'NODE_OPTIONS'));
}

/** Resident memory of an idle Node process with and without the tsx loader, in KiB. */
export async function tsxLoaderKiB(): Promise<number> {
  const idle = 'process.send({ type: "up" }); process.on("message", () => process.exit(0));';
  const rss = async (execArgv: string[]): Promise<number> => {
    const c = spawn(process.execPath, [...execArgv, '-e', idle], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await nextMessage(c, isMessage<{ type: 'up' }>('up'));
    await new Promise((r) => setTimeout(r, 500));
    const kib = procMemory(c.pid ?? 0).rssKiB;
    await stopChild(c);
    return kib;
  };
  return (await rss(['--import', import.meta.resolve('tsx')])) - (await rss([]));
}

/** App names of the benchmarks; the connector dials them on the apps process's ports. */
export const APP_DOMAIN = 'apps.bench.test';
export const PATH_HOSTS = { bulk: 'bulk.path.bench.test', http: 'http.path.bench.test', idle: 'idle.path.bench.test' } as const;
/** Ports the client asks for (the connector maps them to the apps' ephemeral ports). */
export const PATH_PORTS = { bulk: 9000, http: 80, idle: 7000 } as const;

export interface World {
  apps: AppsReady;
  cloud: CloudReady;
  agent: AgentReady;
  children: { apps: ChildProcess; cloud: ChildProcess; agent: ChildProcess };
  appCounts(): Promise<AppsCounts>;
  agentMemory(): Promise<AgentMemory>;
  dnsStats(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startWorld(opts: { dnsUpstreams?: string[]; runtime?: boolean } = {}): Promise<World> {
  const started: ChildProcess[] = [];
  const cleanups: Array<() => void> = [];
  try {
    const appsChild = forkTs(here('./world-apps.ts'));
    started.push(appsChild);
    const apps = await nextMessage(appsChild, isMessage<AppsReady>('apps'));
    const at = (port: number): string => `127.0.0.1:${port}`;
    const cloudArgs: CloudArgs = {
      segments: [
        // Every name under the wildcard is an app; the DNS benchmark asks for a thousand of them.
        { id: 'bench-apps', name: 'Bench apps', domains: [`*.${APP_DOMAIN}`], tcpPorts: [{ from: 80, to: 80 }] },
        {
          id: 'bench-path',
          name: 'Bench path',
          domains: Object.values(PATH_HOSTS),
          tcpPorts: Object.values(PATH_PORTS).map((p) => ({ from: p, to: p })),
        },
      ],
      servers: {
        [`*.${APP_DOMAIN}`]: at(apps.ports.http),
        [`${PATH_HOSTS.bulk}:${PATH_PORTS.bulk}`]: at(apps.ports.bulk),
        [`${PATH_HOSTS.http}:${PATH_PORTS.http}`]: at(apps.ports.http),
        [`${PATH_HOSTS.idle}:${PATH_PORTS.idle}`]: at(apps.ports.idle),
      },
    };
    // ZCC_BENCH_CLOUD_NODE_ARGS: extra node flags for the edge + connector process, e.g. "--cpu-prof".
    const cloudExecArgv = (process.env.ZCC_BENCH_CLOUD_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const cloudBundle = await bundle('world-cloud.ts');
    const cloudChild = fork(cloudBundle.file, [JSON.stringify(cloudArgs)], { execArgv: cloudExecArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    started.push(cloudChild);
    const cloud = await nextMessage(cloudChild, isMessage<CloudReady>('cloud')).finally(() => cloudBundle.remove());
    const identity = await enrollWithToken({
      tenant: cloud.tenant,
      token: cloud.token,
      device: 'bench-agent',
      fingerprint: deviceFingerprint(),
      enroll: cloud.enroll,
      serverName: 'localhost',
      caPem: cloud.caPem,
    });
    const agentArgs: AgentArgs = { cloud, identity: { keyPem: identity.keyPem, certPem: identity.certPem }, ...(opts.dnsUpstreams ? { dns: { upstreams: opts.dnsUpstreams } } : {}) };
    const runtimeDir = opts.runtime ? await sealedRuntimeState(cloud, identity) : undefined;
    if (runtimeDir) cleanups.push(() => rmSync(runtimeDir.dir, { recursive: true, force: true }));
    const agentBundle = runtimeDir ? await bundle('world-runtime.ts', 'sea') : await bundle('world-agent.ts');
    // The agent runs with the Node options and environment its service gives it;
    // ZCC_BENCH_AGENT_NODE_ARGS adds node flags for the agent only, e.g. "--cpu-prof".
    const execArgv = [...serviceNodeOptions(), ...(process.env.ZCC_BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    const env = { ...process.env, ...serviceEnvironment() };
    const agentChild = fork(agentBundle.file, [JSON.stringify(runtimeDir?.args ?? agentArgs)], { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    started.push(agentChild);
    const agent = await nextMessage(agentChild, isMessage<AgentReady>('agent')).finally(() => agentBundle.remove());
    const ask = <T extends { type: string }>(child: ChildProcess, type: T['type']): Promise<T> => {
      const p = nextMessage(child, isMessage<T>(type), 30_000);
      child.send({ type });
      return p;
    };
    return {
      apps,
      cloud,
      agent,
      children: { apps: appsChild, cloud: cloudChild, agent: agentChild },
      appCounts: () => ask<AppsCounts>(appsChild, 'counts'),
      agentMemory: () => ask<AgentMemory>(agentChild, 'mem'),
      dnsStats: async () => (await ask<{ type: 'dns-stats'; stats: Record<string, unknown> }>(agentChild, 'dns-stats')).stats,
      async stop() {
        // The agent first, so the cloud sees an orderly disconnect rather than a reset storm.
        for (const c of [agentChild, cloudChild, appsChild]) await stopChild(c);
        for (const f of cleanups) f();
      },
    };
  } catch (err) {
    for (const c of started.reverse()) await stopChild(c).catch(() => undefined);
    for (const f of cleanups) f();
    throw err;
  }
}

/**
 * What an enrolled, installed agent finds at start: its sealed state (the tenant's key and
 * certificate, sealed to this device) and a user configuration naming the tenant. Written by
 * this process, so the agent under test never enrolls and never loads the PKI library.
 */
async function sealedRuntimeState(cloud: CloudReady, identity: { keyPem: string; certPem: string; identityUri: string }): Promise<{ dir: string; args: RuntimeArgs }> {
  const dir = mkdtempSync(join(tmpdir(), 'zcc-bench-runtime-'));
  const stateDir = join(dir, 'state');
  const state = await openAgentState(stateDir);
  await state.writeTenant(cloud.tenant, {
    tenant: cloud.tenant,
    name: 'Bench',
    edge: cloud.tunnel,
    enroll: cloud.enroll,
    serverName: 'localhost',
    caPem: cloud.caPem,
    keyPem: identity.keyPem,
    certChainPem: identity.certPem,
    identityUri: identity.identityUri,
    enrolledAt: new Date().toISOString(),
  });
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ tenants: [{ id: cloud.tenant, name: 'Bench', cloud: { edge: cloud.tunnel, enroll: cloud.enroll, serverName: 'localhost', caPem: cloud.caPem } }] }));
  return { dir, args: { stateDir, configFile, socketPath: join(dir, 'api.sock') } };
}

/** Resident set (VmRSS) and its peak (VmHWM) of a process, from /proc/PID/status, in KiB. */
export function procMemory(pid: number): { rssKiB: number; hwmKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/** The processes of a world by role, for per-process CPU figures (the client is this process). */
export function worldProcs(world: World): Record<string, number> {
  return { client: process.pid, agent: world.agent.pid, cloud: world.cloud.pid, apps: world.apps.pid };
}

/** Raises the soft RLIMIT_NOFILE of a process to its hard limit (prlimit; same user suffices). */
export function raiseSoftNofile(pid: number): void {
  const { soft, hard } = nofileLimit(pid);
  if (soft >= hard) return;
  const to = hard === Infinity ? 'unlimited' : String(hard);
  spawnSync('prlimit', ['--pid', String(pid), `--nofile=${to}:${to}`], { stdio: 'ignore' });
}

/** The soft and hard RLIMIT_NOFILE of a process, from /proc/PID/limits. */
export function nofileLimit(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  const n = (s: string | undefined): number => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(line?.[1]), hard: n(line?.[2]) };
}
