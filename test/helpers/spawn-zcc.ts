import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

export interface ZccProcess {
  child: ChildProcess;
  ready: Record<string, unknown>;
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `zcc ARGS` as a real process and resolves with its READY payload. `wrap` runs it under
 * another command, e.g. `['ip', 'netns', 'exec', NS]` (signals reach zcc: those exec it).
 */
export function spawnZcc(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000, wrap: string[] = []): Promise<ZccProcess> {
  const argv = [...wrap, process.execPath, join(ROOT, 'bin', 'zcc'), ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop('SIGKILL');
      reject(new Error(`zcc ${args[0]} not READY after ${timeoutMs} ms\n${err.slice(-2000)}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^READY (.*)$/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({ child, ready: JSON.parse(m[1]!) as Record<string, unknown>, stderr: () => err, stop });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`zcc ${args[0]} exited with ${code} before READY\n${err.slice(-2000)}`));
    });
  });
}
