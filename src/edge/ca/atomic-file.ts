import { randomBytes } from 'node:crypto';
import { link, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

function tempPathFor(path: string): string {
  return `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/** Creates `path` (which must not exist) with exactly `mode`, flushed to disk. */
async function writeNewFile(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  // Created with `mode` from the start so a secret is never briefly readable by others; the
  // chmod then undoes any umask that would leave a certificate unreadable.
  const handle = await open(path, 'wx', mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename itself durable. Not every platform can fsync a directory; the data is
  // already safe, only the crash window widens there.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

/** Replaces `path` so that readers see either the old or the new content, never a mix. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const temp = tempPathFor(path);
  try {
    await writeNewFile(temp, data, mode);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

/**
 * Creates `path` with complete content unless it already exists; returns false when it did.
 * Linking (not renaming) the finished temp file means two racing creators cannot overwrite
 * each other: exactly one wins and the other reads the winner's file.
 */
export async function createFileExclusive(path: string, data: string | Uint8Array, mode: number): Promise<boolean> {
  const temp = tempPathFor(path);
  try {
    await writeNewFile(temp, data, mode);
    try {
      await link(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  } finally {
    await rm(temp, { force: true });
  }
  await syncDirectory(dirname(path));
  return true;
}
