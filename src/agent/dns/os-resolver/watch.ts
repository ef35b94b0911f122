import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Tells the caller when resolv.conf may have been rewritten by someone else (a DHCP client,
 * NetworkManager, a VPN). Three sources, because each misses something:
 * - a watch on the directory sees a new file renamed over the path (how dhclient and most
 *   tools replace it), which a watch on the old file's inode never reports;
 * - a watch on the file itself sees in-place writes even when the path is a bind mount
 *   (containers), whose writes the directory never hears about; it is re-armed after every
 *   event because the inode it watches may have just been replaced;
 * - a periodic poll, for what inotify cannot see at all (resolved restarting and forgetting
 *   its per-link settings; filesystems without inotify).
 * Events are hints only: the caller verifies, so spurious ones (our own writes) cost a read.
 */

export interface WatchHandle {
  close(): void;
}

export function watchResolvConf(path: string, onHint: (why: string) => void, pollMs: number): WatchHandle {
  const name = basename(path);
  let closed = false;
  let fileWatcher: FSWatcher | undefined;
  let dirWatcher: FSWatcher | undefined;

  const armFile = (): void => {
    fileWatcher?.close();
    fileWatcher = undefined;
    if (closed) return;
    try {
      fileWatcher = watch(path, { persistent: false }, () => {
        onHint('resolv.conf changed');
        armFile();
      });
      // A watch that breaks (file deleted) is replaced at the next directory event or poll.
      const self = fileWatcher;
      self.on('error', () => {
        self.close();
        if (fileWatcher === self) fileWatcher = undefined;
      });
    } catch {
      // The path does not exist right now; the directory watch re-arms when it appears.
    }
  };

  try {
    dirWatcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
      if (filename !== null && filename !== name) return;
      onHint('resolv.conf replaced');
      armFile();
    });
    dirWatcher.on('error', () => dirWatcher?.close());
  } catch {
    // No inotify for this directory: the poll still catches every change, only later.
  }
  armFile();

  const timer = setInterval(() => {
    onHint('periodic check');
    if (!fileWatcher) armFile();
  }, pollMs);
  // The agent's servers keep the process alive; a forgotten watch should not.
  timer.unref();

  return {
    close: () => {
      closed = true;
      clearInterval(timer);
      fileWatcher?.close();
      dirWatcher?.close();
    },
  };
}
