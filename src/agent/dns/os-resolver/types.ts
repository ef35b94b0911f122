/**
 * Shared shapes of the OS DNS integration: which manager owns the system resolver
 * configuration, what the agent asks of it, and the one interface every backend implements.
 */

export type DnsManager = 'systemd-resolved' | 'networkmanager' | 'resolvconf' | 'openresolv' | 'direct';

export interface ApplyConfig {
  /** The agent DNS server, "ip" or "ip:port" (IPv6 as "[addr]:port"). */
  agentAddress: string;
  /** App domains: routed to the agent only (resolved `~domain`); never added to the search list. */
  appDomains: readonly string[];
  /** Domains appended to short names (e.g. "intranet" → "intranet.corp.example"). */
  searchDomains: readonly string[];
  /**
   * The resolvers the OS used before the agent took over. Backends do not need them to apply,
   * but they go into the journal, so an operator reading it after a crash can see them.
   */
  previousUpstreams: readonly string[];
}

export interface DnsBackend {
  readonly manager: DnsManager;
  /** What the OS would resolve with if the agent were not there, excluding the agent itself. */
  learnUpstreams(): Promise<string[]>;
  /** Point the OS at the agent. Writes the journal before changing anything. */
  apply(cfg: ApplyConfig): Promise<void>;
  /** Undo apply(); safe to call when nothing was applied. */
  restore(): Promise<void>;
  /** Whether the OS still points at the agent as apply() left it. */
  verify(): Promise<boolean>;
}

/** Runs a program and resolves with its output; rejects on a non-zero exit or a timeout. */
export type Runner = (file: string, args: readonly string[], opts?: { input?: string }) => Promise<{ stdout: string; stderr: string }>;

/** What a backend may record before it changes anything; `data` is backend-specific JSON. */
export interface JournalEntry {
  version: 1;
  manager: DnsManager;
  pid: number;
  /** /proc/sys/kernel/random/boot_id when written: a pid means nothing across a reboot. */
  bootId?: string;
  writtenAt: string;
  agentAddress: string;
  previousUpstreams: string[];
  data: Record<string, unknown>;
}

export interface JournalStore {
  write(entry: Omit<JournalEntry, 'version' | 'pid' | 'bootId' | 'writtenAt'>): Promise<void>;
}

/** What a backend that drives a manager's command-line tool needs. */
export interface CommandDeps {
  run: Runner;
  journal: JournalStore;
  /** The agent DNS address, to tell our entries from everyone else's. */
  agentAddress: string;
  /** The link (network interface) the agent owns, for per-link managers. */
  link: string;
  /** The file the libc resolver reads, for verify() and for learning upstreams. */
  resolvConfPath: string;
}
