import net from 'node:net';
import { z } from 'zod';
import { uniqueZones } from './domains.js';
import { readText } from './file-state.js';
import { agentHostForResolvConf, upstreamsOf } from './resolv-conf.js';
import type { ApplyConfig, CommandDeps, DnsBackend } from './types.js';

/**
 * NetworkManager writing resolv.conf itself (dns=default; with dns=systemd-resolved the
 * file is resolved's stub and the resolved backend is chosen instead). The agent's link gets
 * the agent as DNS server with a negative dns-priority, which makes NM use only that link's
 * servers: everything goes to the agent, which forwards non-app names to the other links'
 * servers. `nmcli device modify` changes only the running device, never the saved profile,
 * and `nmcli device reapply` puts the profile's settings back.
 *
 * NM writes a plain resolv.conf, so the agent must listen on port 53.
 */

/** Lower than anything NM assigns (VPNs get 50, other links 100); negative means exclusive. */
export const NM_DNS_PRIORITY = '-1000';

export function nmApplyArgs(link: string, cfg: Pick<ApplyConfig, 'agentAddress' | 'appDomains' | 'searchDomains'>): string[] {
  const host = agentHostForResolvConf(cfg.agentAddress);
  const family = net.isIPv6(host) ? 'ipv6' : 'ipv4';
  const search = uniqueZones(cfg.searchDomains);
  // "~" entries route without searching where NM hands DNS to a split-capable plugin.
  const domains = [...search, ...uniqueZones(cfg.appDomains).filter((d) => !search.includes(d)).map((d) => `~${d}`)];
  return ['device', 'modify', link, `${family}.dns`, host, `${family}.dns-search`, domains.join(','), `${family}.dns-priority`, NM_DNS_PRIORITY];
}

export function nmRestoreArgs(link: string): string[] {
  return ['device', 'reapply', link];
}

/** `nmcli -t` escapes ':' in values; split a terse line at the first unescaped one. */
function terse(line: string): [string, string] {
  const m = /^((?:[^:\\]|\\.)*):(.*)$/.exec(line);
  return m ? [m[1] as string, (m[2] as string).replace(/\\(.)/g, '$1')] : [line, ''];
}

/** DNS servers of every device except `link`, from `nmcli -t -f GENERAL.DEVICE,IP4.DNS,IP6.DNS device show`. */
export function nmServersExcept(output: string, link: string): string[] {
  const out: string[] = [];
  let device = '';
  for (const line of output.split('\n')) {
    const [key, value] = terse(line);
    if (key === 'GENERAL.DEVICE') device = value;
    else if (/^IP[46]\.DNS/.test(key) && value && device !== link) out.push(...value.split(/\s*\|\s*/));
  }
  return out;
}

const Data = z.object({ link: z.string() });

export class NetworkManagerBackend implements DnsBackend {
  readonly manager = 'networkmanager' as const;
  private applied: ApplyConfig | undefined;

  constructor(
    private readonly deps: CommandDeps,
    private readonly tool = 'nmcli',
  ) {}

  static fromJournal(data: unknown, deps: CommandDeps): NetworkManagerBackend {
    return new NetworkManagerBackend({ ...deps, link: Data.parse(data).link });
  }

  async learnUpstreams(): Promise<string[]> {
    const { run, link, agentAddress, resolvConfPath } = this.deps;
    try {
      const out = await run(this.tool, ['-t', '-f', 'GENERAL.DEVICE,IP4.DNS,IP6.DNS', 'device', 'show']);
      const text = nmServersExcept(out.stdout, link).map((s) => `nameserver ${s}`).join('\n');
      const found = upstreamsOf(text, agentAddress);
      if (found.length) return found;
    } catch {
      // NM not answering: the file it last wrote is the next best source.
    }
    return upstreamsOf(await readText(resolvConfPath), agentAddress);
  }

  async apply(cfg: ApplyConfig): Promise<void> {
    const { link, journal, run } = this.deps;
    const args = nmApplyArgs(link, cfg);
    await journal.write({ manager: this.manager, agentAddress: cfg.agentAddress, previousUpstreams: [...cfg.previousUpstreams], data: { link } });
    this.applied = cfg;
    await run(this.tool, args);
  }

  async restore(): Promise<void> {
    await this.deps.run(this.tool, nmRestoreArgs(this.deps.link));
    this.applied = undefined;
  }

  async verify(): Promise<boolean> {
    const cfg = this.applied;
    if (!cfg) return false;
    const host = agentHostForResolvConf(cfg.agentAddress);
    try {
      const out = await this.deps.run(this.tool, ['-g', 'IP4.DNS,IP6.DNS', 'device', 'show', this.deps.link]);
      return out.stdout.split(/[\n|]/).some((v) => v.trim() === host);
    } catch {
      return false;
    }
  }
}
