import { rmSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * What the intercept changed on the host, written to the agent state dir *before* the change
 * is made: after a crash (SIGKILL, power loss) the next start reads it and removes exactly that,
 * even if the previous run died half-way through applying.
 */
export const Journal = z.object({
  version: z.literal(1),
  pid: z.number().int(),
  startedAt: z.string(),
  mode: z.enum(['tproxy', 'redirect']),
  /** The local route: `local <cidr> dev lo src 127.0.0.1 table local proto <routeProto>`. */
  cidr: z.string(),
  routeProto: z.number().int().min(1).max(255),
  /** `<family> <name>` of our nftables table. */
  nftTable: z.string(),
});
export type Journal = z.infer<typeof Journal>;

export const JOURNAL_FILE = 'intercept-journal.json';

export function journalPath(stateDir: string): string {
  return join(stateDir, JOURNAL_FILE);
}

/** The previous run's journal; undefined when there is none. An unreadable one is reported. */
export async function readJournal(stateDir: string): Promise<Journal | undefined> {
  let text: string;
  try {
    text = await readFile(journalPath(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = Journal.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${journalPath(stateDir)}: not an intercept journal: ${parsed.error.message}`);
  return parsed.data;
}

/** Written to a temporary file and renamed, so a crash never leaves half a journal. */
export async function writeJournal(stateDir: string, journal: Journal): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = journalPath(stateDir);
  await writeFile(`${file}.tmp`, `${JSON.stringify(journal, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

export async function removeJournal(stateDir: string): Promise<void> {
  await rm(journalPath(stateDir), { force: true });
}

/** For process 'exit' handlers, which cannot wait. */
export function removeJournalSync(stateDir: string): void {
  rmSync(journalPath(stateDir), { force: true });
}

/** Whether the process that wrote a journal still runs (then its rules are not leftovers). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
