import { promises as dns } from 'node:dns';
import type { DrLookup } from '../../protocol/dr-record.js';

/**
 * The two questions the agent asks of the DR domain, through the configured resolvers (node's
 * c-ares resolver with its own server list, so the agent's own DNS interception is bypassed).
 */
export interface DrDns {
  txt(domain: string): Promise<DrLookup>;
  /** IPv4 addresses of the private service edges; [] when there are none. */
  a(domain: string): Promise<string[]>;
}

/** "The name has no such record": the DR record is missing, which means off. */
const ABSENT = new Set(['ENODATA', 'ENOTFOUND']);

export function resolverDrDns(resolvers: string[] | undefined, timeoutMs: number): DrDns {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  if (resolvers) resolver.setServers(resolvers);
  return {
    async txt(domain) {
      try {
        const txt = await resolver.resolveTxt(domain);
        return txt.length ? { kind: 'records', txt } : { kind: 'missing' };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        // Timeouts, refusals, SERVFAIL: we cannot tell, so the caller keeps its mode.
        return ABSENT.has(code) ? { kind: 'missing' } : { kind: 'error', error: `${code || 'error'}: ${(err as Error).message}` };
      }
    },
    async a(domain) {
      try {
        return await resolver.resolve4(domain);
      } catch (err) {
        if (ABSENT.has((err as NodeJS.ErrnoException).code ?? '')) return [];
        throw err;
      }
    },
  };
}
