import type { Socket } from 'node:net';

/**
 * DNS over TCP (RFC 7766) for one client connection: 2-byte length framing, pipelined
 * queries answered in completion order (each reply carries its query's ID), an idle timeout,
 * a cap on outstanding queries (reading pauses, so TCP flow control pushes back on the
 * client) and a cap on unsent reply bytes (a client that never reads is disconnected).
 */

export interface TcpLimits {
  idleTimeoutMs: number;
  maxPipelined: number;
  maxWriteBufferBytes: number;
}

/** Answer one framed message; undefined means "no reply" and closes the connection. */
export type TcpHandler = (msg: Buffer) => Promise<Buffer | undefined>;

export function serveTcpConnection(socket: Socket, limits: TcpLimits, handle: TcpHandler): void {
  let pending: Buffer = Buffer.alloc(0);
  let outstanding = 0;
  let paused = false;

  socket.setNoDelay(true);
  socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
  // A reset from the client is routine; the 'close' that follows is all we need.
  socket.on('error', () => socket.destroy());

  const send = (reply: Buffer): void => {
    if (socket.destroyed || !socket.writable) return;
    const len = Buffer.alloc(2);
    len.writeUInt16BE(reply.length, 0);
    socket.write(Buffer.concat([len, reply]));
    if (socket.writableLength > limits.maxWriteBufferBytes) socket.destroy();
  };

  const run = (msg: Buffer): void => {
    outstanding += 1;
    handle(msg)
      .then((reply) => {
        if (reply) send(reply);
        // A message the server would drop on UDP means a broken or hostile stream: the framing
        // can no longer be trusted, so the connection ends.
        else socket.destroy();
      })
      .catch(() => socket.destroy())
      .finally(() => {
        outstanding -= 1;
        if (paused && outstanding < limits.maxPipelined && !socket.destroyed) {
          paused = false;
          socket.resume();
          drain();
        }
      });
  };

  const drain = (): void => {
    while (pending.length >= 2 && outstanding < limits.maxPipelined) {
      const need = pending.readUInt16BE(0);
      if (pending.length < 2 + need) return;
      const msg = Buffer.from(pending.subarray(2, 2 + need));
      pending = pending.subarray(2 + need);
      run(msg);
    }
    if (pending.length >= 2 && outstanding >= limits.maxPipelined && !paused) {
      paused = true;
      socket.pause();
    }
  };

  socket.on('data', (chunk: Buffer) => {
    // Bounded: a frame is at most 65,537 bytes and reading pauses while frames wait.
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    drain();
  });
}
