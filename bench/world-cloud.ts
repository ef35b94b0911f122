// The reference cloud (edge with broker, enrollment, dispatcher) and one app connector of the
// `path` and `dns` benchmarks, in one process of their own (forked by bench/world.ts). It is
// test/helpers/harness.ts, the whole cloud the end-to-end tests use, over real sockets; the
// harness's own agent is stopped: the measured agent runs in another process and enrolls with
// the harness's token. Usage: world-cloud.ts JSON (CloudArgs).
import { tierUpEarly } from '../src/common/jit-tiering.js';
import type { HarnessOptions } from '../test/helpers/harness.js';
import { Harness } from '../test/helpers/harness.js';

export interface CloudArgs {
  segments: HarnessOptions['segments'];
  /** Connector static servers: "name[:port]" or "*.suffix[:port]" → "ip[:port]". */
  servers: Record<string, string>;
}

export interface CloudReady {
  type: 'cloud';
  pid: number;
  tenant: string;
  tunnel: string;
  enroll: string;
  caPem: string;
  token: string;
}

// The harness keeps every log line in memory, at debug level unless told otherwise: thousands
// of connections would fill this process with log objects and cost CPU on the measured path.
process.env.ZCC_TEST_LOG_LEVEL ??= 'warn';

// As `zcc cloud` and `zcc connector` do (src/cli/main.ts).
tierUpEarly();

const args = JSON.parse(process.argv[2] ?? '{}') as CloudArgs;
const harness = await new Harness({ segments: args.segments, servers: args.servers }).start();
harness.agent.stop();
const ready: CloudReady = {
  type: 'cloud',
  pid: process.pid,
  tenant: harness.tenantId,
  tunnel: harness.cloud.tunnel,
  enroll: harness.cloud.enroll,
  caPem: harness.cloud.caPem,
  token: harness.token,
};
process.send?.(ready);
process.on('message', (m: { type: string }) => {
  if (m.type === 'logs') process.send?.({ type: 'logs', lines: harness.logs.lines.slice(-20) });
  if (m.type !== 'exit') return;
  void harness.stop().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
