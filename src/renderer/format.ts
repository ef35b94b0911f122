/** Pure display helpers for the renderer (no DOM, no React): unit-testable anywhere. */
import type {
  AppSegmentStatus,
  NetworkStatus,
  PortRange,
  SyntheticIp,
  TenantStatus,
} from '../common/localapi-schema.js';
import { connectionLabel, tenantInSafeMode, tenantNotEnrolled } from '../common/status-view.js';

/** The badge of a tenant: its connection, or what overrides it (not signed in, Safe Mode). */
export function tenantBadge(t: TenantStatus): { label: string; state: string } {
  if (tenantNotEnrolled(t)) return { label: 'Not signed in', state: 'disconnected' };
  if (tenantInSafeMode(t) && t.connection !== 'error') return { label: 'Safe mode', state: 'safe-mode' };
  return { label: connectionLabel(t.connection), state: t.connection };
}

/**
 * Re-authentication is offered when a tenant needs it, is not enrolled yet (the sign-in
 * enrolls it) or is connected (a voluntary refresh).
 */
export function canReauth(t: TenantStatus): boolean {
  return t.needsReauth || tenantNotEnrolled(t) || t.connection === 'connected';
}

/**
 * What the forwarding profile decides here, e.g. "Trusted network: tunnel off by profile",
 * "Untrusted network: apps go through the tunnel".
 */
export function forwardingLine(t: TenantStatus, network: NetworkStatus | undefined): string | undefined {
  const f = t.forwarding;
  if (!f) return undefined;
  const where = network ? (network.type === 'trusted' ? 'Trusted network' : 'Untrusted network') : 'This network';
  if (f.action === 'tunnel') return `${where}: apps go through the tunnel`;
  return `${where}: tunnel off by profile (${f.profile})`;
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

/** "in 6 days", "in 3 h 20 min", "in 4 min", "expired": the time left until `iso`. */
export function formatTimeLeft(iso: string | undefined, now: number): string | undefined {
  if (!iso) return undefined;
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return undefined;
  const minutes = Math.floor((at - now) / 60_000);
  if (minutes < 0) return 'expired';
  if (minutes < 1) return 'in less than a minute';
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `in ${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ''}`;
  return `in ${Math.floor(hours / 24)} days`;
}

/** A setting's value as text: lists joined, booleans on/off, unset as "not set". */
export function formatSettingValue(value: unknown): string {
  if (value === undefined || value === null) return 'not set';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (Array.isArray(value)) return value.length ? value.map((v) => formatSettingValue(v)).join(', ') : 'none';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Log line time as HH:MM:SS in the local zone (the date is in the export). */
export function formatLogTime(iso: string, locale?: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
}
