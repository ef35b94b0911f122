import type { SyntheticIp, TenantStatus } from '../../common/localapi-schema.js';
import { formatSegmentPorts, syntheticIpsBySegment } from '../format';

function IpList({ ips }: { ips: readonly SyntheticIp[] }) {
  if (ips.length === 0) return <span className="muted">none yet</span>;
  return (
    <ul className="ip-list">
      {ips.map((ip) => (
        <li key={ip.fqdn}>
          <code>{ip.fqdn}</code> <span aria-hidden="true">→</span>
          <span className="sr-only"> has address </span> <code>{ip.ip}</code>
        </li>
      ))}
    </ul>
  );
}

/** App segments of one tenant with the synthetic IPs handed out for their names. */
export function SegmentTable({ tenant }: { tenant: TenantStatus }) {
  if (tenant.segments.length === 0 && tenant.syntheticIps.length === 0) {
    return <p className="muted">No app segments.</p>;
  }
  const { bySegment, unmatched } = syntheticIpsBySegment(tenant);
  return (
    <table className="segments">
      <caption>
        App segments<span className="sr-only"> of {tenant.name}</span>
      </caption>
      <thead>
        <tr>
          <th scope="col">Segment</th>
          <th scope="col">Domains</th>
          <th scope="col">Ports</th>
          <th scope="col">Synthetic IPs</th>
        </tr>
      </thead>
      <tbody>
        {tenant.segments.map((s) => (
          <tr key={s.id}>
            <th scope="row">{s.name}</th>
            <td>
              <ul className="domain-list">
                {s.domains.map((d) => (
                  <li key={d}>
                    <code>{d}</code>
                  </li>
                ))}
              </ul>
            </td>
            <td>{formatSegmentPorts(s)}</td>
            <td>
              <IpList ips={bySegment.get(s.id) ?? []} />
            </td>
          </tr>
        ))}
        {unmatched.length > 0 && (
          <tr>
            <th scope="row">Other names</th>
            <td className="muted">no matching segment</td>
            <td>—</td>
            <td>
              <IpList ips={unmatched} />
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
