import { Writable } from 'node:stream';
import type { DestinationStream } from 'pino';
import { createLogger, type Logger } from '../../src/common/log.js';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A real pino logger whose JSON lines are kept for assertions (and for the no-secrets check). */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  readonly log: Logger;

  /** `ring`: also feed this stream (the agent's diagnostics ring), as the agent's own logger does. */
  constructor(name = 'test', ring?: DestinationStream) {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const text of chunk.toString('utf8').split('\n')) {
          if (!text) continue;
          this.raw.push(text);
          this.lines.push(JSON.parse(text) as LogLine);
        }
        cb();
      },
    });
    this.log = createLogger({ name, level: process.env.ZCC_TEST_LOG_LEVEL ?? 'debug', destination: sink, ring });
  }

  find(pred: (l: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(pred);
  }

  /** Polls until a matching line is logged or the deadline passes. */
  async waitFor(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const line = await waitUntil(() => this.find(pred), timeoutMs, 'log line');
    return line;
  }
}

/** Polls `probe` (sync or async) until it yields a truthy value; throws with `what` after the deadline. */
export async function waitUntil<T>(probe: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
