import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { readText } from './file-state.js';
import { agentHostForResolvConf, parseResolvConf, renderRecord, upstreamsOf } from './resolv-conf.js';
import type { ApplyConfig, CommandDeps, DnsBackend } from './types.js';

/**
 * Debian's resolvconf and openresolv: resolv.conf is generated from one record per interface,
 * so the agent adds its own record and removes it again, and never edits the file.
 *
 * The record is named "lo.zcc", not after a real interface, for its position: Debian orders
 * records by /etc/resolvconf/interface-order, where "lo.*" comes first, and by default drops
 * every nameserver after a loopback one — so the agent is the only server and forwards the
 * rest itself. openresolv orders differently; there `-x` (exclusive) gets the same result.
 */

export const RECORD_NAME = 'lo.zcc';
/** Debian resolvconf's per-interface records. */
export const DEBIAN_RECORD_DIR = '/run/resolvconf/interface';

export type ResolvconfFlavor = 'resolvconf' | 'openresolv';

export function resolvconfApplyArgs(flavor: ResolvconfFlavor): string[] {
  return flavor === 'openresolv' ? ['-x', '-a', RECORD_NAME] : ['-a', RECORD_NAME];
}

export function resolvconfRestoreArgs(flavor: ResolvconfFlavor): string[] {
  // openresolv complains about a record that is not there unless -f; Debian's never does.
  return flavor === 'openresolv' ? ['-f', '-d', RECORD_NAME] : ['-d', RECORD_NAME];
}

/** `resolvconf -l` (openresolv): records headed "# resolv.conf from IFACE"; drop ours. */
export function recordsExcept(listing: string, name: string): string {
  let keep = true;
  const out: string[] = [];
  for (const line of listing.split('\n')) {
    const head = /^# resolv\.conf from (\S+)/.exec(line);
    if (head) keep = head[1] !== name;
    else if (keep) out.push(line);
  }
  return out.join('\n');
}

const Data = z.object({ flavor: z.enum(['resolvconf', 'openresolv']) });

export class ResolvconfBackend implements DnsBackend {
  readonly manager: ResolvconfFlavor;
  private applied: ApplyConfig | undefined;

  constructor(
    private readonly deps: CommandDeps,
    flavor: ResolvconfFlavor,
    private readonly recordDir = DEBIAN_RECORD_DIR,
    private readonly tool = 'resolvconf',
  ) {
    this.manager = flavor;
  }

  static fromJournal(data: unknown, deps: CommandDeps): ResolvconfBackend {
    return new ResolvconfBackend(deps, Data.parse(data).flavor);
  }

  async learnUpstreams(): Promise<string[]> {
    const { agentAddress, resolvConfPath, run } = this.deps;
    let records = '';
    try {
      if (this.manager === 'openresolv') {
        records = recordsExcept((await run(this.tool, ['-l'])).stdout, RECORD_NAME);
      } else {
        const names = (await readdir(this.recordDir)).filter((n) => n !== RECORD_NAME);
        records = (await Promise.all(names.map((n) => readText(join(this.recordDir, n))))).join('\n');
      }
    } catch {
      // No record store to read: fall back to the generated file below.
    }
    const found = upstreamsOf(records, agentAddress);
    return found.length ? found : upstreamsOf(await readText(resolvConfPath), agentAddress);
  }

  async apply(cfg: ApplyConfig): Promise<void> {
    const agentHost = agentHostForResolvConf(cfg.agentAddress);
    const { journal, run } = this.deps;
    await journal.write({ manager: this.manager, agentAddress: cfg.agentAddress, previousUpstreams: [...cfg.previousUpstreams], data: { flavor: this.manager } });
    this.applied = cfg;
    await run(this.tool, resolvconfApplyArgs(this.manager), { input: renderRecord({ agentHost, searchDomains: cfg.searchDomains }) });
  }

  async restore(): Promise<void> {
    await this.deps.run(this.tool, resolvconfRestoreArgs(this.manager));
    this.applied = undefined;
  }

  /** The generated file must name the agent first: the libc resolver asks servers in order. */
  async verify(): Promise<boolean> {
    if (!this.applied) return false;
    const first = parseResolvConf(await readText(this.deps.resolvConfPath)).nameservers[0];
    return first === agentHostForResolvConf(this.applied.agentAddress);
  }
}
