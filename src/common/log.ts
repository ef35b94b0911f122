import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';
import { redactSecrets } from './redact.js';

export type { Logger } from 'pino';

/**
 * Keys whose values are secrets wherever they appear in a log object (the line's own keys and
 * two levels below). They are replaced before serialisation, so a careless `log.info({ cfg })`
 * still leaks nothing.
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

const SECRETS: ReadonlySet<string> = new Set(REDACTED_KEYS);

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
    // Not pino's `redact` option: 30x the cost of a line here (see redact.ts).
    formatters: { log: (obj) => redactSecrets(obj, SECRETS) },
    base: { pid: process.pid },
  };
  const out = opts.destination ?? pino.destination(2);
  // multistream filters per stream by level; 'trace' lets the logger's own level decide.
  const logger = opts.ring ? pino(options, pino.multistream([{ stream: out, level: 'trace' }, { stream: opts.ring, level: 'trace' }])) : pino(options, out);
  return redactChildBindings(logger);
}

/**
 * A child's bindings are serialised once, when it is made, and pino passes them through no
 * formatter of ours; they are redacted on the way in. Children are made from their parent by
 * prototype, so the root's `child` is the one every descendant calls.
 */
function redactChildBindings(logger: Logger): Logger {
  const child = logger.child;
  logger.child = function (this: Logger, bindings, options) {
    return child.call(this, redactSecrets(bindings, SECRETS), options);
  } as Logger['child'];
  return logger;
}

/** A logger that discards everything, for library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
