import { z } from 'zod';
import { parseUpstream } from '../upstream.js';
import { uniqueZones } from './domains.js';
import { readText } from './file-state.js';
import { upstreamsOf } from './resolv-conf.js';
import type { ApplyConfig, CommandDeps, DnsBackend } from './types.js';

/**
 * systemd-resolved: split DNS without touching any file. The agent's link gets the agent as
 * its DNS server and the app domains as routing-only domains (`~domain`), so resolved sends
 * only app names to the agent and everything else where it always did. resolvectl is the
 * command-line face of the D-Bus calls SetLinkDNS / SetLinkDomains / SetLinkDefaultRoute /
 * RevertLink, which resolved forgets when it restarts: the periodic verify() notices and the
 * caller applies again.
 *
 * resolved refuses per-link settings on the loopback device, so "lo" (the fallback when the
 * agent has no link of its own) fails at apply and the caller falls back to the file backend.
 */

/** resolved's view of every link's servers; unlike the stub file it names real upstreams. */
export const RESOLVED_UPSTREAM_FILE = '/run/systemd/resolve/resolv.conf';

/** resolvectl takes "ip" for port 53 and "ip:port" / "[ip6]:port" otherwise (systemd ≥ 246). */
export function resolvedServerArg(agentAddress: string): string {
  const up = parseUpstream(agentAddress);
  return up.port === 53 ? up.host : up.label;
}

/** The resolvectl invocations that apply `cfg` to `link`, in order. */
export function resolvedApplyCommands(link: string, cfg: Pick<ApplyConfig, 'agentAddress' | 'appDomains' | 'searchDomains'>): string[][] {
  const search = uniqueZones(cfg.searchDomains);
  // A plain (search) domain already routes to the link; "~" is for routing without searching.
  const routing = uniqueZones(cfg.appDomains).filter((d) => !search.includes(d));
  const cmds = [['dns', link, resolvedServerArg(cfg.agentAddress)]];
  if (routing.length || search.length) cmds.push(['domain', link, ...routing.map((d) => `~${d}`), ...search]);
  // Never the default route: names outside our domains must keep going to the real servers.
  cmds.push(['default-route', link, 'false']);
  // Answers cached before (NXDOMAIN for app names, typically) would hide the new routing.
  cmds.push(['flush-caches']);
  return cmds;
}

export function resolvedRestoreCommands(link: string): string[][] {
  return [['revert', link], ['flush-caches']];
}

/** The values resolvectl prints for one link: "Link 3 (zcc0): a b c" → [a, b, c]. */
export function linkValues(output: string): string[] {
  const line = output.split('\n').find((l) => /^Link \d+ \(/.test(l.trim())) ?? '';
  const colon = line.indexOf('):');
  return colon < 0 ? [] : line.slice(colon + 2).trim().split(/\s+/).filter(Boolean);
}

const Data = z.object({ link: z.string() });

export class ResolvedBackend implements DnsBackend {
  readonly manager = 'systemd-resolved' as const;
  private applied: ApplyConfig | undefined;

  constructor(
    private readonly deps: CommandDeps,
    private readonly upstreamFile = RESOLVED_UPSTREAM_FILE,
    private readonly tool = 'resolvectl',
  ) {}

  static fromJournal(data: unknown, deps: CommandDeps): ResolvedBackend {
    return new ResolvedBackend({ ...deps, link: Data.parse(data).link });
  }

  async learnUpstreams(): Promise<string[]> {
    // Not the stub 127.0.0.53: resolved routes our domains back to the agent, a loop for
    // every non-app name under an app domain.
    return upstreamsOf(await readText(this.upstreamFile), this.deps.agentAddress);
  }

  async apply(cfg: ApplyConfig): Promise<void> {
    const { link, journal, run } = this.deps;
    await journal.write({ manager: this.manager, agentAddress: cfg.agentAddress, previousUpstreams: [...cfg.previousUpstreams], data: { link } });
    this.applied = cfg;
    for (const args of resolvedApplyCommands(link, cfg)) await run(this.tool, args);
  }

  async restore(): Promise<void> {
    const [revert, flush] = resolvedRestoreCommands(this.deps.link) as [string[], string[]];
    await this.deps.run(this.tool, revert);
    // A cache flush is a courtesy; failing it must not fail the restore.
    await this.deps.run(this.tool, flush).catch(() => undefined);
    this.applied = undefined;
  }

  async verify(): Promise<boolean> {
    const cfg = this.applied;
    if (!cfg) return false;
    const { link, run } = this.deps;
    try {
      const servers = linkValues((await run(this.tool, ['dns', link])).stdout);
      const domains = linkValues((await run(this.tool, ['domain', link])).stdout);
      const want = (resolvedApplyCommands(link, cfg).find((c) => c[0] === 'domain') ?? []).slice(2);
      return servers.includes(resolvedServerArg(cfg.agentAddress)) && want.every((d) => domains.includes(d));
    } catch {
      // resolved restarting (D-Bus not answering) counts as "not applied": apply again later.
      return false;
    }
  }
}
