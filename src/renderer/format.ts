/** Pure display helpers for the renderer (no DOM, no React): unit-testable anywhere. */
import type {
  AppSegmentStatus,
  ConnectionState,
  PortRange,
  SyntheticIp,
  TenantStatus,
} from '../common/localapi-schema.js';

const CONNECTION_LABELS: Record<ConnectionState, string> = {
  disconnected: 'Disconnected',
  connecting: 'Connecting…',
  authenticating: 'Signing in…',
  connected: 'Connected',
  'safe-mode': 'Safe mode',
  error: 'Error',
};

export function connectionLabel(state: ConnectionState): string {
  return CONNECTION_LABELS[state];
}

/** Re-authentication is offered when a tenant needs it or is connected (a voluntary refresh). */
export function canReauth(t: TenantStatus): boolean {
  return t.needsReauth || t.connection === 'connected';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function formatPorts(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}–${r.to}`)).join(', ');
}

/** "TCP 80, 443 · UDP 53", or "—" when the segment has no ports. */
export function formatSegmentPorts(s: AppSegmentStatus): string {
  const parts: string[] = [];
  if (s.tcpPorts.length) parts.push(`TCP ${formatPorts(s.tcpPorts)}`);
  if (s.udpPorts.length) parts.push(`UDP ${formatPorts(s.udpPorts)}`);
  return parts.length ? parts.join(' · ') : '—';
}

export function formatTime(iso: string | undefined, locale?: string): string | undefined {
  if (!iso) return undefined;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

const normalise = (name: string): string => name.trim().toLowerCase().replace(/\.$/, '');

/** `*.example.com` matches any name below example.com (not example.com itself). */
export function domainMatches(pattern: string, fqdn: string): boolean {
  const p = normalise(pattern);
  const f = normalise(fqdn);
  if (p.startsWith('*.')) return f.endsWith(p.slice(1)) && f.length > p.length - 1;
  return p === f;
}

export interface SegmentIps {
  bySegment: Map<string, SyntheticIp[]>;
  /** Synthetic IPs whose name matches no segment (shown separately, never hidden). */
  unmatched: SyntheticIp[];
}

/** Groups a tenant's synthetic IPs under the first segment whose domains match the name. */
export function syntheticIpsBySegment(t: TenantStatus): SegmentIps {
  const bySegment = new Map<string, SyntheticIp[]>(t.segments.map((s) => [s.id, []]));
  const unmatched: SyntheticIp[] = [];
  for (const ip of t.syntheticIps) {
    const seg = t.segments.find((s) => s.domains.some((d) => domainMatches(d, ip.fqdn)));
    if (seg) bySegment.get(seg.id)?.push(ip);
    else unmatched.push(ip);
  }
  return { bySegment, unmatched };
}

export function errorMessage(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  // Electron wraps IPC errors: "Error invoking remote method 'zcc:request': Error: <reason>".
  return raw.replace(/^Error invoking remote method '[^']*': (\w*Error: )?/, '');
}
