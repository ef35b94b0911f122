/**
 * `zcc agent`: the agent as the system service runs it (systemd: resources/systemd). Reads the
 * managed and user configuration, opens the sealed state, serves the local API, and stops
 * cleanly on SIGINT/SIGTERM, restoring what it changed in the OS.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { defaultSourcePaths, type SourceRef } from '../agent/config/sources.js';
import { applyAgentHeapSettings } from '../agent/runtime/heap-settings.js';
import { AgentRuntime, type RuntimeReady } from '../agent/runtime/runtime.js';
import { createLogger } from '../common/log.js';
import { LogRing } from '../common/log-ring.js';
import { LOCALAPI_DEFAULT_SOCKET } from '../common/localapi-schema.js';
import { groupId } from './group-id.js';
import type { DataPlaneChoice } from '../../native/dataplane/dataplane-process.js';

export interface AgentArgs {
  config?: string;
  /** A managed source file, or `none`. */
  managed?: string;
  stateDir?: string;
  socket?: string;
  osDns?: boolean;
  intercept?: boolean;
  dataPlane?: DataPlaneChoice;
  socks?: string;
  httpProxy?: string;
  noDns?: boolean;
  operatorGroup?: string;
}

export async function startAgent(a: AgentArgs): Promise<{ runtime: AgentRuntime; ready: RuntimeReady }> {
  const defaults = defaultSourcePaths();
  const stateDir = a.stateDir ?? '/var/lib/zcc';
  const managed: SourceRef | null = a.managed === 'none' ? null : a.managed ? { file: a.managed } : (defaults.managed ?? null);
  const logs = new LogRing(1000);
  const log = createLogger({ name: 'zcc-agent', ring: logs });
  const runtime = new AgentRuntime({
    stateDir,
    socketPath: a.socket ?? LOCALAPI_DEFAULT_SOCKET,
    configFile: a.config ?? (a.stateDir ? join(stateDir, 'config.json') : defaults.user),
    managed,
    log,
    logs,
    device: hostname(),
    osDns: a.osDns,
    intercept: a.intercept,
    dataPlane: a.dataPlane,
    socks: a.socks,
    httpProxy: a.httpProxy,
    noDns: a.noDns,
    operatorGid: a.operatorGroup ? await groupId(a.operatorGroup) : undefined,
  });
  const ready = await runtime.start();
  applyAgentHeapSettings(() => runtime.agent.openMicrotunnels);
  return { runtime, ready };
}
