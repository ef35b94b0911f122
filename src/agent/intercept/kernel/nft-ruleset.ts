import type { PortRange } from '../../../protocol/segments.js';

/**
 * The nftables rules of the intercept, all in one table of our own (`inet zcc`) so that
 * removing that table removes everything we ever added, and nothing of anyone else's.
 */

export const NFT_TABLE = 'zcc';
export const NFT_FAMILY = 'inet';

/** How a connection to a synthetic IP reaches the agent's single listener. */
export type InterceptMode = 'tproxy' | 'redirect';

export interface RulesetSpec {
  mode: InterceptMode;
  /** The synthetic pool, e.g. 100.64.0.0/10. */
  cidr: string;
  /** The agent's TCP listener on 127.0.0.1. */
  tcpPort: number;
  /** The agent's UDP listener on 127.0.0.1 (tproxy mode only). */
  udpPort: number;
}

/**
 * - `output` (priority mangle, before nat): refuses at once, in the kernel, ports the app's
 *   segments do not allow for synthetic IPs the agent has "gated" (port-gate.ts): TCP with an
 *   RST before any handshake (curl: "Connection refused"), UDP with ICMP port unreachable.
 *   ICMP echo to the pool is refused as administratively prohibited: no microtunnel carries
 *   ICMP (seed 003: ZPA has no ICMP), and letting the local route answer would report every
 *   synthetic IP alive, reachable app or not.
 * - `prerouting`: pool traffic that did not come from this host is dropped, so a neighbour
 *   routing 100.64/10 at us cannot ride our Z-Tunnels. With the local route, locally sent
 *   packets loop through `lo` and pass prerouting, where TPROXY hands them to the listener
 *   without any fwmark or policy routing.
 * - redirect mode: `nat output` rewrites the destination to 127.0.0.1:port; the listener
 *   reads the original one back with SO_ORIGINAL_DST. UDP is not intercepted in this mode
 *   (conntrack keeps no per-socket original destination for UDP); it gets port unreachable.
 */
export function buildRuleset(spec: RulesetSpec): string {
  const { cidr, tcpPort, udpPort } = spec;
  const lines = [
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    '  set gated { type ipv4_addr; flags timeout; }',
    '  set allowed_tcp { type ipv4_addr . inet_service; flags interval; }',
    '  set allowed_udp { type ipv4_addr . inet_service; flags interval; }',
    '  chain output {',
    '    type filter hook output priority mangle; policy accept;',
    '    ip daddr @gated ip daddr . tcp dport != @allowed_tcp reject with tcp reset',
    '    ip daddr @gated ip daddr . udp dport != @allowed_udp reject',
    `    ip daddr ${cidr} icmp type echo-request reject with icmp type admin-prohibited`,
    `    ip daddr ${cidr} meta l4proto != { tcp, udp } drop`,
    '  }',
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    ip daddr ${cidr} iif != "lo" drop`,
  ];
  if (spec.mode === 'tproxy') {
    lines.push(`    ip daddr ${cidr} meta l4proto tcp tproxy ip to 127.0.0.1:${tcpPort}`);
    lines.push(`    ip daddr ${cidr} meta l4proto udp tproxy ip to 127.0.0.1:${udpPort}`);
    lines.push('  }');
  } else {
    lines.push('  }');
    lines.push('  chain nat_output {');
    lines.push('    type nat hook output priority -100; policy accept;');
    lines.push(`    ip daddr ${cidr} meta l4proto tcp redirect to :${tcpPort}`);
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Sorted, merged (overlapping or adjacent) ranges: an interval set refuses overlaps. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ from: r.from, to: r.to });
  }
  return out;
}

export interface GatePorts {
  tcp: readonly PortRange[];
  udp: readonly PortRange[];
}

export interface GateChange {
  ip: string;
  ports: GatePorts;
  /** What the allowed sets hold for this IP now (to delete first), if anything. */
  previous?: GatePorts;
}

/**
 * One nft transaction that (re)gates IPs. Re-adding an element that exists is a no-op in the
 * kernel, timeout included, so nothing here relies on refreshing: the allowed ranges carry no
 * timeout and are replaced (exact delete, then add) when an IP's app or ports change; the gate
 * itself expires `gateTimeoutSec` after it was created and is created again by a later use.
 */
export function gateCommands(changes: readonly GateChange[], gateTimeoutSec: number): string {
  const out: string[] = [];
  const elements = (ip: string, ranges: readonly PortRange[]): string =>
    mergeRanges(ranges)
      .map((r) => `${ip} . ${r.from === r.to ? r.from : `${r.from}-${r.to}`}`)
      .join(', ');
  const emit = (verb: 'add' | 'delete', set: string, list: string): void => {
    if (list) out.push(`${verb} element ${NFT_FAMILY} ${NFT_TABLE} ${set} { ${list} }`);
  };
  for (const c of changes) {
    if (c.previous) {
      emit('delete', 'allowed_tcp', elements(c.ip, c.previous.tcp));
      emit('delete', 'allowed_udp', elements(c.ip, c.previous.udp));
    }
    emit('add', 'allowed_tcp', elements(c.ip, c.ports.tcp));
    emit('add', 'allowed_udp', elements(c.ip, c.ports.udp));
    out.push(`add element ${NFT_FAMILY} ${NFT_TABLE} gated { ${c.ip} timeout ${gateTimeoutSec}s }`);
  }
  return `${out.join('\n')}\n`;
}

/** Forgets every gate (segments changed: the allowed ports may have too). */
export function flushGateCommands(): string {
  return ['gated', 'allowed_tcp', 'allowed_udp'].map((s) => `flush set ${NFT_FAMILY} ${NFT_TABLE} ${s}`).join('\n') + '\n';
}
