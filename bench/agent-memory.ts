// What the bench agents (world-agent.ts, world-runtime.ts) report about their memory over IPC.
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import type { ProxyCounters } from '../src/agent/intercept/proxy-core.js';

export interface AgentReady {
  type: 'agent';
  pid: number;
  socksPort: number;
  dnsPort?: number;
}

export interface AgentMemory {
  type: 'mem';
  /** From /proc/self/status, in KiB. */
  vmRssKiB: number;
  vmHwmKiB: number;
  heapUsed: number;
  /** V8 heap committed (used + free space V8 holds on to). */
  heapTotal: number;
  /** Committed size of each V8 heap space (new_space, old_space, ...), bytes. */
  heapSpaces: Record<string, number>;
  external: number;
  arrayBuffers: number;
  socks: { active: number; established: number; accepted: number; failed: number };
}

function statusKiB(status: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
}

/** This process's memory, and its SOCKS5 front end's counters. */
export function memoryReport(c: ProxyCounters | undefined): AgentMemory {
  const status = readFileSync('/proc/self/status', 'utf8');
  const mu = process.memoryUsage();
  const failed = c ? Object.values(c.failed).reduce((a, b) => a + b, 0) : Number.NaN;
  return {
    type: 'mem',
    vmRssKiB: statusKiB(status, 'VmRSS'),
    vmHwmKiB: statusKiB(status, 'VmHWM'),
    heapUsed: mu.heapUsed,
    heapTotal: mu.heapTotal,
    heapSpaces: Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name, sp.space_size])),
    external: mu.external,
    arrayBuffers: mu.arrayBuffers,
    socks: { active: c?.active ?? Number.NaN, established: c?.established ?? Number.NaN, accepted: c?.accepted ?? Number.NaN, failed },
  };
}
