import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Keys whose values are secrets wherever they appear in a log object. pino's redaction
 * replaces them before serialisation, so a careless `log.info({ cfg })` still leaks nothing.
 */
export const REDACTED_KEYS = [
  'key',
  'privateKey',
  'private_key',
  'password',
  'token',
  'enrollmentToken',
  'provisioningKey',
  'assertion',
  'SAMLResponse',
  'cookie',
  'authorization',
  'secret',
] as const;

const redactPaths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export interface LogOptions {
  name: string;
  level?: string;
  destination?: DestinationStream;
  /** Also keep recent lines here (after redaction), for the diagnostics view. */
  ring?: DestinationStream;
}

/** Structured JSON logger with secret redaction; level from ZCC_LOG_LEVEL or `info`. */
export function createLogger(opts: LogOptions): Logger {
  const options: LoggerOptions = {
    name: opts.name,
    level: opts.level ?? process.env.ZCC_LOG_LEVEL ?? 'info',
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  const out = opts.destination ?? pino.destination(2);
  if (!opts.ring) return pino(options, out);
  // multistream filters per stream by level; 'trace' lets the logger's own level decide.
  return pino(options, pino.multistream([{ stream: out, level: 'trace' }, { stream: opts.ring, level: 'trace' }]));
}

/** A logger that discards everything, for library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
