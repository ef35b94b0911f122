import type { JournalStore, Runner } from '../../src/agent/dns/os-resolver/types.js';

export interface Call {
  cmd: string;
  input?: string;
}

/**
 * A command runner that records what would have run. `reply` maps a command line prefix
 * ("resolvectl dns zcc0") to its stdout, or to an Error to make it fail.
 */
export function fakeRunner(reply: Record<string, string | Error> = {}): { run: Runner; calls: Call[] } {
  const calls: Call[] = [];
  const run: Runner = async (file, args, opts) => {
    const cmd = [file, ...args].join(' ');
    calls.push(opts?.input === undefined ? { cmd } : { cmd, input: opts.input });
    const key = Object.keys(reply)
      .filter((k) => cmd.startsWith(k))
      .sort((a, b) => b.length - a.length)[0];
    const r = key === undefined ? '' : reply[key];
    if (r instanceof Error) throw r;
    return { stdout: r ?? '', stderr: '' };
  };
  return { run, calls };
}

/** A journal that keeps entries in memory and lets a test look at the world at write time. */
type Entry = Parameters<JournalStore['write']>[0];

export function memoryJournal(onWrite?: () => void): JournalStore & { entries: Entry[] } {
  const entries: Entry[] = [];
  return {
    entries,
    write: async (e) => {
      onWrite?.();
      entries.push(e);
    },
  };
}
