import { mkdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './file-state.js';
import type { JournalEntry, JournalStore } from './types.js';

/**
 * The record of what the agent changed in the OS DNS configuration, written (atomically,
 * 0600: it holds a copy of a system file) BEFORE each change. Its existence at startup means
 * the previous agent did not clean up — crashed, was SIGKILLed, lost power — and the first
 * thing to do is undo what it says.
 */

export const JOURNAL_FILE = 'dns-takeover.json';

const Entry = z.object({
  version: z.literal(1),
  manager: z.enum(['systemd-resolved', 'networkmanager', 'resolvconf', 'openresolv', 'direct']),
  pid: z.number().int(),
  bootId: z.string().optional(),
  writtenAt: z.string(),
  agentAddress: z.string(),
  previousUpstreams: z.array(z.string()),
  data: z.record(z.string(), z.unknown()),
});

/** The journal exists but cannot be understood; it is moved aside, never silently deleted. */
export class JournalCorruptError extends Error {
  constructor(
    readonly path: string,
    readonly keptAt: string,
    detail: string,
  ) {
    super(`DNS journal ${path} is unreadable (${detail}); kept as ${keptAt}. Check /etc/resolv.conf by hand.`);
    this.name = 'JournalCorruptError';
  }
}

/** Identifies this boot, so a pid recorded before a reboot is never taken for a live process. */
export async function bootId(): Promise<string | undefined> {
  return readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((s) => s.trim(), () => undefined);
}

/** Whether the process that wrote `entry` still runs: then its takeover is not a leftover. */
export async function writerAlive(entry: JournalEntry): Promise<boolean> {
  if (entry.pid === process.pid || !entry.bootId || entry.bootId !== (await bootId())) return false;
  try {
    process.kill(entry.pid, 0);
    return true;
  } catch (e) {
    // EPERM: the pid exists but belongs to someone else — still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class Journal implements JournalStore {
  readonly path: string;

  constructor(private readonly stateDir: string) {
    this.path = join(stateDir, JOURNAL_FILE);
  }

  async write(entry: Omit<JournalEntry, 'version' | 'pid' | 'bootId' | 'writtenAt'>): Promise<void> {
    const full: JournalEntry = { version: 1, pid: process.pid, bootId: await bootId(), writtenAt: new Date().toISOString(), ...entry };
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, `${JSON.stringify(full, null, 2)}\n`, { mode: 0o600 });
  }

  /** The entry, undefined when there is none; JournalCorruptError when there is one we cannot read. */
  async read(): Promise<JournalEntry | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let detail: string;
    try {
      const parsed = Entry.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
      detail = parsed.error.issues[0]?.message ?? 'invalid';
    } catch (e) {
      detail = String(e);
    }
    const keptAt = `${this.path}.corrupt-${Date.now()}`;
    await rename(this.path, keptAt);
    throw new JournalCorruptError(this.path, keptAt, detail);
  }

  async remove(): Promise<void> {
    await unlink(this.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}
