import { execFile } from 'node:child_process';

/** A failed `ip`/`nft` invocation, with what the tool said. */
export class HostCommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`${command} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no output'}`);
    this.name = 'HostCommandError';
  }
}

/** Runs a host tool with a deadline (a wedged netlink call must not hang the agent's start). */
export function run(file: 'ip' | 'nft', args: readonly string[], input?: string, timeoutMs = 10_000): Promise<string> {
  const command = `${file} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = typeof err.code === 'number' ? err.code : null;
      const why = typeof err.code === 'string' ? `${err.code} ${err.message}` : stderr;
      reject(new HostCommandError(command, why, code));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Like run(), but "it is already gone" is success: cleanup must be idempotent. */
export async function runIgnoringAbsent(file: 'ip' | 'nft', args: readonly string[]): Promise<boolean> {
  try {
    await run(file, args);
    return true;
  } catch (err) {
    if (err instanceof HostCommandError && /No such|not found|does not exist|No such process|Cannot find/i.test(err.stderr)) return false;
    throw err;
  }
}
