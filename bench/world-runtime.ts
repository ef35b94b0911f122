// The installed agent of the `path` benchmark's memory row: `zcc agent` itself (AgentRuntime:
// configuration, sealed state, local API, trusted-network monitor, SOCKS5 front end), started
// from a sealed state the bench process wrote, as an installed agent starts at boot. No DNS
// server (proxy use: `--no-dns`). Logs at `info` into /dev/null. Forked by bench/world.ts with
// the service unit's Node options. Usage: world-runtime.ts JSON (RuntimeArgs).
import { pino } from 'pino';
import { applyAgentHeapSettings } from '../src/agent/runtime/heap-settings.js';
import { AgentRuntime } from '../src/agent/runtime/runtime.js';
import { tierUpEarly } from '../src/common/jit-tiering.js';
import { createLogger } from '../src/common/log.js';
import { memoryReport, type AgentReady } from './agent-memory.js';

export interface RuntimeArgs {
  stateDir: string;
  configFile: string;
  socketPath: string;
}

// As `zcc agent` does (src/cli/main.ts).
tierUpEarly();
const args = JSON.parse(process.argv[2] ?? '{}') as RuntimeArgs;
const log = createLogger({ name: 'zcc-agent', level: 'info', destination: pino.destination({ dest: '/dev/null', sync: false }) });
const runtime = new AgentRuntime({ ...args, managed: null, log, socks: '127.0.0.1:0', noDns: true, device: 'bench-agent' });

// Bundled as CommonJS like the installed agent (bench/bundle.ts): no top-level await.
async function main(): Promise<void> {
  const ready = await runtime.start();
  // As `zcc agent` does once started (src/cli/agent.ts).
  applyAgentHeapSettings(() => runtime.agent.openMicrotunnels);
  await runtime.waitConnected();
  const socksPort = Number(ready.socks?.split(':').pop());
  process.send?.({ type: 'agent', pid: process.pid, socksPort } satisfies AgentReady);
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'mem') process.send?.(memoryReport(runtime.socksCounters));
  if (m.type === 'exit') void runtime.stop().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
main().catch((err: unknown) => {
  process.stderr.write(`world-runtime: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
