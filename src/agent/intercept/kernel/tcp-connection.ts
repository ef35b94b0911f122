import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../../common/log.js';
import { splice, type Splice, type SpliceResult } from '../../../protocol/splice.js';
import type { Agent } from '../../agent.js';
import { isDialError } from '../dialer.js';
import type { Inet4Address } from '../../../../native/inet.js';
import { appPorts, portIn } from './app-ports.js';
import type { PortGate } from './port-gate.js';
import { IdleTimer, type InterceptTimeouts } from './timeouts.js';

/** Bytes of early data held for a microtunnel still opening; past it the client is paused. */
export const DEFAULT_EARLY_DATA_LIMIT = 256 << 10;

export interface TcpCounters {
  accepted: number;
  refused: number;
  failed: number;
  established: number;
}

export interface TcpContext {
  agent: Agent;
  log: Logger;
  timeouts: InterceptTimeouts;
  earlyDataLimit: number;
  gate?: PortGate;
  counters: TcpCounters;
  /** Registers a live splice so shutdown can reset it. */
  track(s: Splice): void;
  /** Called when a tracked splice has settled (one function for all connections). */
  spliceDone(r: SpliceResult, s: Splice): void;
}

/**
 * One intercepted TCP connection, from accept to splice. `dst` is its original destination,
 * a synthetic IP:port. The connection is refused with an RST, at once, when the IP names no
 * app, when no segment of the app allows the port, or when the microtunnel is refused, fails
 * or takes longer than `connectMs`: an application must never sit on a connection that will
 * not work.
 */
export function serveTcp(socket: Socket, dst: Inet4Address, ctx: TcpContext, fields: Record<string, unknown>): void {
  const { agent, log } = ctx;
  // remoteAddress is a system call (getpeername): only for lines that are written.
  const refuse = (why: string, extra: Record<string, unknown> = {}): void => {
    ctx.counters.refused++;
    log.info({ ...fields, src: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`, ...extra, why }, 'connection refused (RST)');
    socket.resetAndDestroy();
  };
  const mapping = agent.pool.acquire(dst.address);
  if (!mapping) return refuse('no app has this synthetic IP');
  // Pinned for as long as the connection lives, so the IP cannot be recycled under it.
  socket.once('close', () => agent.pool.release(dst.address));
  const tenant = agent.enabledTenant(mapping.tenant);
  if (!tenant) return refuse('tenant is off', { tenant: mapping.tenant });
  ctx.gate?.note(dst.address, mapping.fqdn, tenant.segments);
  if (!portIn(appPorts(tenant.segments, mapping.fqdn, 'tcp'), dst.port)) return refuse('port-not-in-segment', { app: mapping.fqdn });
  let opened: ReturnType<Agent['open']>;
  try {
    opened = agent.open({ proto: 'tcp', host: dst.address, port: dst.port });
  } catch (err) {
    return refuse(isDialError(err) ? err.reason : 'internal', { err: (err as Error).message });
  }
  const { stream, established } = opened;
  const tfields = { ...fields, app: `${opened.host}:${dst.port}`, tenant: opened.tenant };
  const stopEarly = holdEarlyData(socket, stream, ctx.earlyDataLimit);
  const onClientGone = (): void => {
    // Gone before the tunnel was up: the tunnel is no longer wanted.
    stream.destroy();
  };
  socket.once('close', onClientGone);
  const timer = setTimeout(() => stream.destroy(new Error(`microtunnel not established within ${ctx.timeouts.connectMs} ms`)), ctx.timeouts.connectMs);
  timer.unref();
  established.then(
    () => {
      clearTimeout(timer);
      socket.off('close', onClientGone);
      const early = stopEarly();
      if (socket.destroyed) return void stream.destroy();
      ctx.counters.established++;
      log.debug({ ...tfields, earlyBytes: early }, 'microtunnel established');
      const s = splice(socket, stream, log, { fields: tfields, onDone: ctx.spliceDone });
      ctx.track(s);
      watchIdle(socket, stream, ctx.timeouts, s, log, tfields);
    },
    (err: unknown) => {
      clearTimeout(timer);
      socket.off('close', onClientGone);
      stopEarly();
      if (socket.destroyed) return;
      ctx.counters.failed++;
      log.info({ ...tfields, err: (err as Error).message, reason: isDialError(err) ? err.reason : undefined }, 'microtunnel failed: client reset');
      socket.resetAndDestroy();
    },
  );
}

/**
 * Writes what the client sends before the microtunnel is established straight into the
 * stream (HTTP/2 carries it ahead of the answer, in order), pausing the client once `limit`
 * bytes are out or the stream pushes back. Returns the function that detaches and reports the
 * early byte count; the client is left paused for the splice to resume.
 */
function holdEarlyData(socket: Socket, stream: Duplex, limit: number): () => number {
  let early = 0;
  let waiting = false;
  const onDrain = (): void => {
    waiting = false;
    if (early < limit) socket.resume();
  };
  const onData = (chunk: Buffer): void => {
    early += chunk.length;
    const ok = stream.write(chunk);
    if (!ok && !waiting) {
      waiting = true;
      stream.once('drain', onDrain);
    }
    if (!ok || early >= limit) socket.pause();
  };
  socket.on('data', onData);
  return () => {
    socket.off('data', onData);
    stream.off('drain', onDrain);
    socket.pause();
    return early;
  };
}

/**
 * Applies the open / half-closed idle limits to a spliced connection. With no open limit (the
 * default: open TCP never times out) nothing is attached until a FIN: no timer and no listener
 * per chunk on an open connection; the half-closed limit counts from the first FIN on.
 */
function watchIdle(socket: Socket, stream: Duplex, t: InterceptTimeouts, s: Splice, log: Logger, fields: Record<string, unknown>): void {
  let idle: IdleTimer | null = null;
  const watch = (limit: number): void => {
    if (!idle) {
      const timer = new IdleTimer((ms) => {
        log.info({ ...fields, idleMs: ms }, 'idle timeout: connection reset');
        s.abort(new Error('idle timeout'));
      });
      const touch = (): void => timer.touch();
      socket.on('data', touch);
      stream.on('data', touch);
      void s.done.then(() => {
        timer.stop();
        socket.off('data', touch);
        stream.off('data', touch);
      });
      idle = timer;
    }
    idle.setLimit(limit);
  };
  let half = false;
  const halfClosed = (): void => {
    if (half) return;
    half = true;
    if (t.tcpHalfClosedIdleMs > 0) watch(t.tcpHalfClosedIdleMs);
    else idle?.stop();
  };
  socket.on('end', halfClosed);
  stream.on('end', halfClosed);
  if (socket.readableEnded) halfClosed();
  else if (t.tcpOpenIdleMs > 0) watch(t.tcpOpenIdleMs);
}
