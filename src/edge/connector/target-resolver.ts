import { lookup } from 'node:dns/promises';
import { matchesDomain } from '../../protocol/domain-match.js';

/**
 * Where the connector dials an app. Static server entries (seed 003: "static server config")
 * come first — keyed by "name", "name:port", "*.suffix" or "*.suffix:port", valued "ip" or
 * "ip:port" — then the connector's own resolver: only the connector ever knows a server's IP.
 */
export class TargetResolver {
  constructor(private readonly staticServers: Record<string, string> = {}) {}

  async resolve(host: string, port: number): Promise<{ host: string; port: number }> {
    const fixed = this.resolveStatic(host, port);
    if (fixed) return fixed;
    const { address } = await lookup(host, { family: 4 });
    return { host: address, port };
  }

  /** The static entry for host:port, if any, without waiting (no promise per microtunnel). */
  resolveStatic(host: string, port: number): { host: string; port: number } | undefined {
    const entry = this.staticEntry(host, port);
    if (!entry) return undefined;
    const colon = entry.lastIndexOf(':');
    return colon > 0 && !entry.includes('::') ? { host: entry.slice(0, colon), port: Number(entry.slice(colon + 1)) } : { host: entry, port };
  }

  private staticEntry(host: string, port: number): string | undefined {
    const exact = this.staticServers[`${host}:${port}`] ?? this.staticServers[host];
    if (exact) return exact;
    for (const [key, value] of Object.entries(this.staticServers)) {
      const [pattern, p] = key.split(':') as [string, string | undefined];
      if (pattern.startsWith('*.') && (!p || Number(p) === port) && matchesDomain(pattern, host)) return value;
    }
    return undefined;
  }
}
