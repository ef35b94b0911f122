import type { Duplex } from 'node:stream';

/**
 * Why a microtunnel could not be opened. The intercept front ends (SOCKS5, HTTP CONNECT) map
 * each reason onto their own wire error so the client application sees a meaningful failure.
 */
export type DialFailure =
  | 'not-an-app'
  | 'needs-reauth'
  | 'denied'
  | 'unreachable'
  | 'no-connector'
  | 'tunnel-down'
  | 'timeout'
  | 'reset';

export const DIAL_FAILURES: readonly DialFailure[] = [
  'not-an-app',
  'needs-reauth',
  'denied',
  'unreachable',
  'no-connector',
  'tunnel-down',
  'timeout',
  'reset',
];

export interface DialTarget {
  /** FQDN as the application asked for it, or an IPv4/IPv6 literal (IPv6 without brackets). */
  host: string;
  port: number;
}

/**
 * Opens a microtunnel. Resolves with an established byte stream, or rejects with DialError.
 * An aborted signal means the caller no longer wants the stream; a dialer that resolves anyway
 * gets its stream destroyed by the caller.
 *
 * `start`, when a dialer has it, is the same dial without the promise wrapper and the signal:
 * the stream comes back at once (or start throws DialError), `established` settles like the
 * dial's promise, and a caller that gives up destroys the stream. The front ends use it when
 * present, which spares an AbortController and its listeners per connection.
 */
export type Dialer = ((target: DialTarget, signal?: AbortSignal) => Promise<Duplex>) & {
  start?: (target: DialTarget) => StartedDial;
};

/** A dial under way: the stream (writable at once, data flows once established) and the answer. */
export interface StartedDial {
  stream: Duplex;
  established: Promise<void>;
}

export class DialError extends Error {
  readonly reason: DialFailure;

  constructor(reason: DialFailure, message?: string, options?: { cause?: unknown }) {
    super(message ?? `dial failed: ${reason}`, options);
    this.name = 'DialError';
    this.reason = reason;
  }
}

export function isDialError(err: unknown): err is DialError {
  return err instanceof DialError;
}
