import type { ClientSessionOptions, ServerSessionOptions } from 'node:http2';

/**
 * HTTP/2 tuning of a Z-Tunnel. Per-microtunnel windows of 1 MiB bound what one slow reader can
 * hold (Node consumes connection-level window on receipt, so a stalled stream never starves the
 * others); the 16 MiB session window keeps many fast streams busy. Default 64 KiB windows ran at
 * a third of the throughput (docs/bench-mux.md).
 */
export const STREAM_WINDOW = 1 << 20;
export const SESSION_WINDOW = 16 << 20;
export const MAX_MICROTUNNELS_PER_SESSION = 20_000;

const settings = {
  initialWindowSize: STREAM_WINDOW,
  maxConcurrentStreams: MAX_MICROTUNNELS_PER_SESSION,
  enablePush: false,
  maxHeaderListSize: 16 << 10,
};

const common = {
  settings,
  // nghttp2 refuses new streams once this much is buffered session-wide (MB); sized for
  // thousands of microtunnels each holding up to a window of data.
  maxSessionMemory: 512,
  peerMaxConcurrentStreams: MAX_MICROTUNNELS_PER_SESSION,
  maxOutstandingPings: 4,
  maxHeaderListPairs: 32,
};

export const CLIENT_SESSION_OPTIONS: ClientSessionOptions = { ...common };
export const SERVER_SESSION_OPTIONS: ServerSessionOptions = { ...common };
