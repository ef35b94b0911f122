import type { LogLine } from '../../common/localapi-schema.js';
import { formatLogTime } from '../format';

/** Recent agent log lines, newest first (already redacted by the agent). */
export function LogTable({ lines }: { lines: readonly LogLine[] }) {
  if (lines.length === 0) return <p className="muted">No recent log lines.</p>;
  const newestFirst = [...lines].reverse();
  return (
    <div className="log-scroll" tabIndex={0} role="region" aria-label="Recent log lines, scrollable">
      <table className="log">
        <caption>Recent log lines</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Level</th>
            <th scope="col">Source</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {newestFirst.map((l, i) => (
            <tr key={`${l.time}-${i}`} className={`level-${l.level}`}>
              <td>
                <time dateTime={l.time}>{formatLogTime(l.time)}</time>
              </td>
              <td>{l.level}</td>
              <td>{[l.component, l.tenant].filter(Boolean).join(' · ') || '—'}</td>
              <td className="log-msg">{l.msg}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
