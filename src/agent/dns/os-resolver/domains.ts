/**
 * App segment domains as managers want them: "*.apps.example" and "apps.example." both mean
 * the zone apps.example, which is what a routing domain is.
 */
export function zoneOf(domain: string): string {
  return domain.trim().toLowerCase().replace(/^\*\./, '').replace(/\.$/, '');
}

export function uniqueZones(domains: readonly string[]): string[] {
  return [...new Set(domains.map(zoneOf).filter(Boolean))];
}
