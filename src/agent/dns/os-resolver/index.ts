import { mkdir } from 'node:fs/promises';
import type { Logger } from '../../../common/log.js';
import { DirectBackend } from './backend-direct.js';
import { NetworkManagerBackend } from './backend-nm.js';
import { ResolvedBackend } from './backend-resolved.js';
import { ResolvconfBackend } from './backend-resolvconf.js';
import { probeDnsManager } from './detect.js';
import { Journal, JournalCorruptError, writerAlive } from './journal.js';
import { execRunner } from './run.js';
import type { ApplyConfig, CommandDeps, DnsBackend, DnsManager, JournalEntry, Runner } from './types.js';
import { watchResolvConf } from './watch.js';

/**
 * Pointing the OS resolver at the agent DNS server, and undoing it — also after a crash.
 *
 * Order at start: undo whatever a previous agent's journal says (it did not clean up), detect
 * the manager, learn the upstreams the OS uses now, hand them to the DNS server, then apply.
 * While running, watch for someone else rewriting the configuration: learn their new
 * upstreams, apply again. release() undoes everything and deletes the journal.
 */

export type { DnsManager } from './types.js';
export { JournalCorruptError } from './journal.js';

/** Where the agent DNS listens when it owns resolv.conf. Port 53 is all the libc resolver speaks; 127.0.0.53/.54 are resolved's. */
export const DEFAULT_AGENT_DNS = '127.0.1.53';
export const DEFAULT_POLL_MS = 5_000;
/** Rewrites come in bursts (truncate, write, rename); check once they have settled. */
const DEBOUNCE_MS = 100;

export interface TakeOverOptions {
  stateDir: string;
  agentAddress: string;
  appDomains: readonly string[];
  searchDomains: readonly string[];
  log: Logger;
  resolvConfPath?: string;
  /** A link the agent owns (its TUN), for systemd-resolved / NetworkManager. Default "lo". */
  link?: string;
  /**
   * The upstreams the agent DNS server must forward to: called before the OS is pointed at
   * the agent, and again whenever they change (pass DnsServer.setUpstreams).
   */
  onUpstreams?: (upstreams: string[]) => void;
  pollMs?: number;
  /** Skip detection and use this backend. */
  backend?: DnsManager;
  run?: Runner;
}

export interface DnsTakeover {
  readonly manager: DnsManager;
  readonly upstreams: readonly string[];
  /** Verify now and apply again if needed (network change, resume from sleep). */
  recheck(): Promise<void>;
  /** Put the OS configuration back; idempotent. */
  release(): Promise<void>;
}

interface Ctx {
  path: string;
  journal: Journal;
  log: Logger;
  run: Runner;
  agentAddress: string;
  link: string;
}

function makeBackend(manager: DnsManager, c: Ctx): DnsBackend {
  const cmd: CommandDeps = { run: c.run, journal: c.journal, agentAddress: c.agentAddress, link: c.link, resolvConfPath: c.path };
  switch (manager) {
    case 'direct':
      return new DirectBackend({ path: c.path, agentAddress: c.agentAddress, journal: c.journal, log: c.log });
    case 'systemd-resolved':
      return new ResolvedBackend(cmd);
    case 'networkmanager':
      return new NetworkManagerBackend(cmd);
    case 'resolvconf':
    case 'openresolv':
      return new ResolvconfBackend(cmd, manager);
  }
}

function backendFromJournal(entry: JournalEntry, c: Ctx): DnsBackend {
  const cmd: CommandDeps = { run: c.run, journal: c.journal, agentAddress: entry.agentAddress, link: c.link, resolvConfPath: c.path };
  switch (entry.manager) {
    case 'direct':
      return DirectBackend.fromJournal(entry.data, { agentAddress: entry.agentAddress, journal: c.journal, log: c.log });
    case 'systemd-resolved':
      return ResolvedBackend.fromJournal(entry.data, cmd);
    case 'networkmanager':
      return NetworkManagerBackend.fromJournal(entry.data, cmd);
    case 'resolvconf':
    case 'openresolv':
      return ResolvconfBackend.fromJournal(entry.data, cmd);
  }
}

export interface RecoverOptions {
  stateDir: string;
  log: Logger;
  resolvConfPath?: string;
  run?: Runner;
}

/**
 * Undo what a previous agent recorded and did not undo. Call at every agent start, DNS
 * takeover wanted or not. Resolves with the manager restored, undefined when there was no journal.
 */
export async function restoreFromJournal(o: RecoverOptions): Promise<DnsManager | undefined> {
  const journal = new Journal(o.stateDir);
  const entry = await journal.read();
  if (!entry) return undefined;
  if (await writerAlive(entry)) {
    throw new Error(`system DNS is held by another agent (pid ${entry.pid}, since ${entry.writtenAt}) using ${o.stateDir}; stop it first`);
  }
  const ctx: Ctx = { path: o.resolvConfPath ?? '/etc/resolv.conf', journal, log: o.log, run: o.run ?? execRunner(), agentAddress: entry.agentAddress, link: 'lo' };
  o.log.warn({ manager: entry.manager, pid: entry.pid, writtenAt: entry.writtenAt }, 'dns: a previous zcc did not restore the system DNS configuration; restoring it now');
  await backendFromJournal(entry, ctx).restore();
  await journal.remove();
  o.log.info({ manager: entry.manager }, 'dns: restored from journal');
  return entry.manager;
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export async function takeOverSystemDns(opts: TakeOverOptions): Promise<DnsTakeover> {
  const { log } = opts;
  const path = opts.resolvConfPath ?? '/etc/resolv.conf';
  const run = opts.run ?? execRunner();
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  const ctx: Ctx = { path, journal: new Journal(opts.stateDir), log, run, agentAddress: opts.agentAddress, link: opts.link ?? 'lo' };
  try {
    await restoreFromJournal({ stateDir: opts.stateDir, log, resolvConfPath: path, run });
  } catch (err) {
    // Fail loudly but keep going: the direct backend recognises its own leftover file.
    if (!(err instanceof JournalCorruptError)) throw err;
    log.error({ err: err.message }, 'dns: journal unreadable; the system DNS configuration may need checking by hand');
  }

  const detected = opts.backend ? { manager: opts.backend, reason: 'configured' } : await probeDnsManager(path, run);
  log.info({ manager: detected.manager, reason: detected.reason }, 'dns: system DNS manager');
  let upstreams: string[] = [];
  const cfg = (): ApplyConfig => ({ agentAddress: opts.agentAddress, appDomains: opts.appDomains, searchDomains: opts.searchDomains, previousUpstreams: upstreams });
  const start = async (b: DnsBackend): Promise<DnsBackend> => {
    upstreams = await b.learnUpstreams();
    if (!upstreams.length) log.warn({ manager: b.manager }, 'dns: no upstream resolvers found; non-app names will fail');
    opts.onUpstreams?.(upstreams);
    await b.apply(cfg());
    return b;
  };

  let backend = makeBackend(detected.manager, ctx);
  try {
    backend = await start(backend);
  } catch (err) {
    await backend.restore().catch(() => undefined);
    if (backend.manager === 'direct') {
      await ctx.journal.remove();
      throw err;
    }
    log.warn({ manager: backend.manager, err: String(err) }, 'dns: could not configure the DNS manager; taking over resolv.conf instead');
    backend = await start(makeBackend('direct', ctx));
  }
  log.info({ manager: backend.manager, agent: opts.agentAddress, upstreams }, 'dns: system DNS now goes through the agent');

  let released = false;
  let busy: Promise<void> = Promise.resolve();
  let debounce: NodeJS.Timeout | undefined;
  const exclusive = (fn: () => Promise<void>): Promise<void> => {
    const p = busy.then(fn);
    busy = p.catch(() => undefined);
    return p;
  };

  const check = async (why: string): Promise<void> => {
    if (released || (await backend.verify())) return;
    const learned = await backend.learnUpstreams();
    if (!learned.length) log.warn({ why }, 'dns: the new configuration names no usable nameserver; keeping the previous upstreams');
    else if (!same(learned, upstreams)) {
      upstreams = learned;
      opts.onUpstreams?.(learned);
    }
    log.warn({ why, manager: backend.manager, upstreams }, 'dns: system DNS configuration was changed by someone else; applying again');
    await backend.apply(cfg());
  };
  const recheck = (why: string): Promise<void> =>
    exclusive(() => check(why)).catch((err: unknown) => log.error({ why, err: String(err) }, 'dns: re-applying the DNS configuration failed; retrying at the next check'));

  const watcher = watchResolvConf(
    path,
    (why) => {
      if (released || debounce) return;
      debounce = setTimeout(() => {
        debounce = undefined;
        void recheck(why);
      }, DEBOUNCE_MS);
    },
    opts.pollMs ?? DEFAULT_POLL_MS,
  );

  let releasing: Promise<void> | undefined;
  const doRelease = async (): Promise<void> => {
    released = true;
    watcher.close();
    clearTimeout(debounce);
    await exclusive(async () => {
      await backend.restore();
      // Only after a successful restore: otherwise the next start must try again.
      await ctx.journal.remove();
    });
    log.info({ manager: backend.manager }, 'dns: system DNS configuration restored');
  };

  return {
    manager: backend.manager,
    get upstreams() {
      return upstreams;
    },
    recheck: () => recheck('requested'),
    release: () => (releasing ??= doRelease().catch((err: unknown) => {
      releasing = undefined; // let the caller try again
      throw err;
    })),
  };
}
