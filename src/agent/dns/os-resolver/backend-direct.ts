import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../../common/log.js';
import { absoluteTarget } from './detect.js';
import { readText, restoreState, snapshot, writeFileAtomic, type FileState } from './file-state.js';
import {
  agentHostForResolvConf,
  isAgentFile,
  parseResolvConf,
  previousFromAgentFile,
  renderAgentResolvConf,
  upstreamsOf,
} from './resolv-conf.js';
import type { ApplyConfig, DnsBackend, JournalStore } from './types.js';

/**
 * No manager (or none we can talk to): the agent replaces resolv.conf itself. The previous
 * file (content, mode, owner — or the symlink it was) goes into the journal first; the new
 * file names only the agent, which forwards everything that is not an app to the previous
 * nameservers. Restoring puts back exactly what was there, unless someone else (a DHCP
 * client) has written a newer file since: theirs is more current than our backup.
 */

const FileStateSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), contentBase64: z.string(), mode: z.number().int(), uid: z.number().int(), gid: z.number().int() }),
  z.object({ kind: z.literal('symlink'), target: z.string() }),
  z.object({ kind: z.literal('missing') }),
]);

const DirectData = z.object({ path: z.string(), backup: FileStateSchema, wroteSha256: z.string() });
export type DirectData = z.infer<typeof DirectData>;

export interface DirectDeps {
  path: string;
  agentAddress: string;
  journal: JournalStore;
  log: Logger;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

export class DirectBackend implements DnsBackend {
  readonly manager = 'direct' as const;
  private backup: FileState | undefined;
  private wroteSha256: string | undefined;
  private loggedInPlace = false;

  constructor(private readonly deps: DirectDeps) {}

  /** A backend that can undo what a previous process recorded in its journal. */
  static fromJournal(data: unknown, deps: Omit<DirectDeps, 'path'>): DirectBackend {
    const d = DirectData.parse(data);
    const b = new DirectBackend({ ...deps, path: d.path });
    b.backup = d.backup;
    b.wroteSha256 = d.wroteSha256;
    return b;
  }

  async learnUpstreams(): Promise<string[]> {
    return upstreamsOf(await this.previousText(), this.deps.agentAddress);
  }

  async apply(cfg: ApplyConfig): Promise<void> {
    const { path, log } = this.deps;
    const agentHost = agentHostForResolvConf(cfg.agentAddress);
    const current = await snapshot(path);
    if (!this.isOurs(current)) {
      // Someone else's file (first apply, or a DHCP client wrote a new one): that is what to restore.
      this.backup = current;
    } else if (!this.backup) {
      log.error({ path }, 'dns: resolv.conf was left by zcc and no backup exists; rebuilding the previous file from its comments');
      this.backup = this.rebuiltBackup(current);
    }
    const content = renderAgentResolvConf(parseResolvConf(await this.textOf(this.backup)), { agentHost, searchDomains: cfg.searchDomains });
    const wroteSha256 = sha256(content);
    const data: DirectData = { path, backup: this.backup, wroteSha256 };
    await this.deps.journal.write({ manager: 'direct', agentAddress: cfg.agentAddress, previousUpstreams: [...cfg.previousUpstreams], data });
    this.wroteSha256 = wroteSha256;
    // Everyone must be able to read resolv.conf, whatever the mode of the file it replaces.
    const mode = this.backup.kind === 'file' ? this.backup.mode | 0o444 : 0o644;
    const how = await writeFileAtomic(path, content, { mode });
    if (how === 'in-place' && !this.loggedInPlace) {
      this.loggedInPlace = true;
      log.info({ path }, 'dns: resolv.conf cannot be replaced (a mount point, or a read-only directory); rewriting it in place');
    }
  }

  async restore(): Promise<void> {
    const { path, log } = this.deps;
    const backup = this.backup;
    if (!backup) return;
    const current = await snapshot(path);
    if (this.isOurs(current)) {
      await restoreState(path, backup);
      log.info({ path, restored: backup.kind }, 'dns: resolv.conf restored');
    } else {
      log.warn({ path }, 'dns: resolv.conf was replaced by someone else since zcc wrote it; leaving their version');
    }
    this.backup = undefined;
    this.wroteSha256 = undefined;
  }

  async verify(): Promise<boolean> {
    const current = await snapshot(this.deps.path);
    return current.kind === 'file' && sha256(Buffer.from(current.contentBase64, 'base64')) === this.wroteSha256;
  }

  /**
   * Whether the file at the path is the agent's: exactly what we wrote, a leftover with our
   * marker, or empty after we wrote (an in-place write cut short by a crash: restoring beats
   * leaving an empty file).
   */
  private isOurs(st: FileState): boolean {
    if (st.kind !== 'file') return false;
    const bytes = Buffer.from(st.contentBase64, 'base64');
    if (sha256(bytes) === this.wroteSha256 || isAgentFile(bytes.toString('utf8'))) return true;
    return bytes.length === 0 && this.wroteSha256 !== undefined;
  }

  /** The configuration the OS had without the agent: the backup while ours is in place, else the file. */
  private async previousText(): Promise<string> {
    const current = await snapshot(this.deps.path);
    if (this.isOurs(current)) return this.textOf(this.backup ?? this.rebuiltBackup(current));
    return this.textOf(current);
  }

  private async textOf(st: FileState): Promise<string> {
    if (st.kind === 'file') return Buffer.from(st.contentBase64, 'base64').toString('utf8');
    // A symlink's target (e.g. resolved's stub file) is still there after we replaced the link.
    if (st.kind === 'symlink') return readText(absoluteTarget(this.deps.path, st.target));
    return '';
  }

  private rebuiltBackup(current: FileState): FileState {
    if (current.kind !== 'file') return current;
    const text = previousFromAgentFile(Buffer.from(current.contentBase64, 'base64').toString('utf8'));
    return { ...current, contentBase64: Buffer.from(text).toString('base64') };
  }
}
