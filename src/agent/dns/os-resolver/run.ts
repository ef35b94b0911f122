import { execFile } from 'node:child_process';
import type { Runner } from './types.js';

/**
 * The real command runner. A bounded timeout, because a hung D-Bus call (resolvectl while
 * resolved restarts) must not hang the agent's startup or shutdown with it; LC_ALL=C so the
 * output the backends parse is never translated.
 */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    cause: unknown,
  ) {
    super(`${command} failed: ${stderr.trim() || String(cause)}`);
    this.name = 'CommandError';
  }
}

/** resolvconf lives in /sbin on Debian, which a service's PATH may lack. */
const SEARCH_PATH = [process.env.PATH, '/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin'].filter(Boolean).join(':');

export function execRunner(timeoutMs = 10_000): Runner {
  return (file, args, opts) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        file,
        [...args],
        { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, PATH: SEARCH_PATH, LC_ALL: 'C' } },
        (err, stdout, stderr) => {
          if (err) reject(new CommandError([file, ...args].join(' '), stderr, err));
          else resolve({ stdout, stderr });
        },
      );
      // Always end stdin: resolvconf -a reads its record from it and would otherwise wait forever.
      child.stdin?.end(opts?.input ?? '');
    });
}
