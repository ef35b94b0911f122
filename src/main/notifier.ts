/**
 * Keeps the notice memory between status pushes and shows what notifications.ts decides.
 * Electron-free: main.ts passes `show` (an Electron Notification) and calls `tick` every
 * minute, since "sign-in expires soon" becomes true with time alone.
 */
import {
  DEFAULT_NOTICE_OPTIONS,
  EMPTY_NOTICE_MEMORY,
  noticesFor,
  type Notice,
  type NoticeMemory,
  type NoticeOptions,
} from './notifications.js';
import type { MaybeStatus } from './tray-state.js';

export interface Notifier {
  update(status: MaybeStatus): void;
  /** Re-evaluates the last status at the current time. */
  tick(): void;
  setOptions(opts: Partial<NoticeOptions>): void;
}

export function createNotifier(deps: { show(notice: Notice): void; now?: () => number }): Notifier {
  const now = deps.now ?? Date.now;
  let memory: NoticeMemory = EMPTY_NOTICE_MEMORY;
  let opts: NoticeOptions = DEFAULT_NOTICE_OPTIONS;
  let last: MaybeStatus;
  let seen = false;

  const update = (status: MaybeStatus): void => {
    last = status;
    seen = true;
    const out = noticesFor(status, memory, now(), opts);
    memory = out.memory;
    for (const n of out.notices) deps.show(n);
  };
  return {
    update,
    tick: () => {
      if (seen) update(last);
    },
    setOptions: (o) => {
      opts = { ...opts, ...o };
    },
  };
}
