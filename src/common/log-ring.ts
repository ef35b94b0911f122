import type { DestinationStream } from 'pino';
import type { LogLine } from './localapi-schema.js';

const LEVELS: Record<number, LogLine['level']> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * The last N log lines, kept for the diagnostics view. It is fed the already-serialised output
 * of pino, so it only ever holds what redaction let through; and it keeps only a few fields
 * (time, level, message, component, tenant), never the rest of the object.
 */
export class LogRing implements DestinationStream {
  private readonly lines: LogLine[] = [];

  constructor(private readonly capacity = 500) {}

  write(chunk: string): void {
    for (const text of chunk.split('\n')) {
      if (!text) continue;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      const time = typeof obj.time === 'number' ? new Date(obj.time).toISOString() : new Date().toISOString();
      const line: LogLine = { time, level: LEVELS[Number(obj.level)] ?? 'info', msg: typeof obj.msg === 'string' ? obj.msg.slice(0, 1000) : '' };
      const component = obj.component ?? obj.proc;
      if (typeof component === 'string') line.component = component;
      if (typeof obj.tenant === 'string') line.tenant = obj.tenant;
      this.lines.push(line);
      if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
    }
  }

  /** The most recent `limit` lines, oldest first. */
  recent(limit = 200): LogLine[] {
    return this.lines.slice(-limit);
  }
}
