/**
 * Is the machine on the trusted (corporate) network? A PURE evaluation of the configured
 * criteria against observed facts, so every combination is table-testable and the monitor
 * (trusted-network-monitor.ts) only has to gather facts and call it. Facts come from
 * network-facts.ts.
 */
import net from 'node:net';
import type { TrustedNetworkCriteria } from '../config/schema.js';

export interface NetworkFacts {
  /** OS resolvers (resolv.conf `nameserver`). */
  dnsServers: string[];
  /** resolv.conf `search` (or `domain`). */
  searchDomains: string[];
  defaultGateways: string[];
  /** Addresses of the local interfaces. */
  addresses: string[];
  /** Name → addresses, for the names the criteria ask about; absent when the lookup failed. */
  resolved: Record<string, string[]>;
}

export type CriterionName = 'dnsServers' | 'searchDomains' | 'hostname' | 'defaultGateway' | 'networkRange';

export interface CriterionResult {
  criterion: CriterionName;
  holds: boolean;
}

export interface TrustEvaluation {
  trusted: boolean;
  /** One entry per configured criterion, for status and diagnostics. */
  results: CriterionResult[];
}

export function emptyFacts(): NetworkFacts {
  return { dnsServers: [], searchDomains: [], defaultGateways: [], addresses: [], resolved: {} };
}

/** Canonical text of an address: no IPv6 zone, IPv4-mapped IPv6 as IPv4, IPv6 compressed. */
export function canonicalIp(ip: string): string | undefined {
  const noZone = ip.trim().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(noZone);
  const addr = mapped ? (mapped[1] as string) : noZone;
  const family = net.isIP(addr);
  if (family === 4) return addr;
  if (family !== 6) return undefined;
  // SocketAddress normalises the textual form (zero compression, lower case).
  return new net.SocketAddress({ address: addr, family: 'ipv6' }).address;
}

const canonicalName = (n: string): string => n.trim().toLowerCase().replace(/\.$/, '');

function anyIpIn(wanted: readonly string[], seen: readonly string[]): boolean {
  const set = new Set(seen.map(canonicalIp).filter((x): x is string => x !== undefined));
  return wanted.some((w) => {
    const c = canonicalIp(w);
    return c !== undefined && set.has(c);
  });
}

export function inRange(cidr: string, address: string): boolean {
  const [base, prefix] = cidr.split('/');
  const ip = canonicalIp(address);
  if (base === undefined || prefix === undefined || ip === undefined) return false;
  const type = net.isIP(base) === 4 ? 'ipv4' : 'ipv6';
  if ((net.isIP(ip) === 4 ? 'ipv4' : 'ipv6') !== type) return false;
  const list = new net.BlockList();
  list.addSubnet(base, Number(prefix), type);
  return list.check(ip, type);
}

/** Evaluates each configured criterion; absent criteria are not counted at all. */
export function evaluateTrust(criteria: TrustedNetworkCriteria, facts: NetworkFacts): TrustEvaluation {
  const results: CriterionResult[] = [];
  if (criteria.dnsServers?.length) {
    results.push({ criterion: 'dnsServers', holds: anyIpIn(criteria.dnsServers, facts.dnsServers) });
  }
  if (criteria.searchDomains?.length) {
    const seen = new Set(facts.searchDomains.map(canonicalName));
    results.push({ criterion: 'searchDomains', holds: criteria.searchDomains.some((d) => seen.has(canonicalName(d))) });
  }
  if (criteria.hostname) {
    const got = facts.resolved[canonicalName(criteria.hostname.name)] ?? [];
    results.push({ criterion: 'hostname', holds: anyIpIn([criteria.hostname.expectedIp], got) });
  }
  if (criteria.defaultGateway) {
    results.push({ criterion: 'defaultGateway', holds: anyIpIn([criteria.defaultGateway], facts.defaultGateways) });
  }
  if (criteria.networkRange) {
    const range = criteria.networkRange;
    results.push({ criterion: 'networkRange', holds: facts.addresses.some((a) => inRange(range, a)) });
  }
  // No criteria: never trusted. "all" of nothing would otherwise make every network trusted,
  // and trusting by accident sends traffic around the tunnel (fail closed).
  const trusted = results.length > 0 && (criteria.match === 'all' ? results.every((r) => r.holds) : results.some((r) => r.holds));
  return { trusted, results };
}

export function isTrusted(criteria: TrustedNetworkCriteria, facts: NetworkFacts): boolean {
  return evaluateTrust(criteria, facts).trusted;
}

/** The names whose resolution the criteria need (the facts gatherer looks these up). */
export function namesToResolve(criteria: TrustedNetworkCriteria): string[] {
  return criteria.hostname ? [canonicalName(criteria.hostname.name)] : [];
}
