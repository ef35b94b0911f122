// Case table and IPC messages shared by the mux benchmark orchestrator and its peer processes.
import type { TlsMaterial } from './lib.js';

export type Transport = 'tcp' | 'tls' | 'h2' | 'yamux';

/** `tuned`: h2 initialWindowSize 1 MiB + 16 MiB connection window; yamux 1 MiB initial / 16 MiB max stream window. */
export type Windows = 'tuned' | 'default';

interface CaseBase {
  name: string;
  transport: Transport;
  windows: Windows;
  description: string;
}

/** Bulk upload sender → receiver, `streams` concurrent streams sharing the byte budget. */
export interface ThroughputCase extends CaseBase {
  kind: 'throughput';
  streams: number;
}

/** Serial opens: time from "open" to the first byte from the far side. */
export interface SetupCase extends CaseBase {
  kind: 'setup';
  opens: number;
  warmupOpens: number;
}

/** Open → first byte → close cycles with `concurrency` in flight, for a fixed duration. */
export interface RateCase extends CaseBase {
  kind: 'rate';
  concurrency: number;
  durationMs: number;
  warmupMs: number;
}

export type MuxCase = ThroughputCase | SetupCase | RateCase;

export const H2_STREAM_WINDOW = 1 << 20;
export const H2_CONNECTION_WINDOW = 16 << 20;

// ---- IPC -------------------------------------------------------------------------------------

export interface ServeMsg {
  type: 'serve';
  c: MuxCase;
  tls: TlsMaterial;
}

export interface DriveMsg {
  type: 'drive';
  c: MuxCase;
  tls: TlsMaterial;
  port: number;
  bytes: number;
  /** Untimed transfers of min(bytes, 64 MiB) repeat until this much time has passed. */
  warmupMs: number;
  writeSize: number;
}

export interface ExitMsg {
  type: 'exit';
}

export type ToPeer = ServeMsg | DriveMsg | ExitMsg;

export interface ListeningMsg {
  type: 'listening';
  port: number;
}

export type Measurement =
  | { kind: 'throughput'; bytes: number; ns: number }
  | { kind: 'setup'; samplesMs: number[] }
  | { kind: 'rate'; completed: number; ns: number };

export interface ResultMsg {
  type: 'result';
  m: Measurement;
}

export interface ErrorMsg {
  type: 'error';
  message: string;
}

export type FromPeer = ListeningMsg | ResultMsg | ErrorMsg;

function isObj(m: unknown): m is { type: unknown } {
  return typeof m === 'object' && m !== null && 'type' in m;
}

export function isFromPeer(m: unknown): m is FromPeer {
  return isObj(m) && (m.type === 'listening' || m.type === 'result' || m.type === 'error');
}

export function isToPeer(m: unknown): m is ToPeer {
  return isObj(m) && (m.type === 'serve' || m.type === 'drive' || m.type === 'exit');
}
