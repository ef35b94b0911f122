import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { heapModeFor, ROOMY_BELOW_CONNECTIONS, TIGHT_FROM_CONNECTIONS } from '../../src/agent/runtime/heap-settings.js';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'heap-churn.ts');

describe('the agent heap settings', () => {
  it('turn tight at many connections and back to V8 own only well below, so an agent near one threshold does not flip', () => {
    expect(heapModeFor(0, 'roomy')).toBe('roomy');
    expect(heapModeFor(TIGHT_FROM_CONNECTIONS - 1, 'roomy')).toBe('roomy');
    expect(heapModeFor(TIGHT_FROM_CONNECTIONS, 'roomy')).toBe('tight');
    expect(heapModeFor(TIGHT_FROM_CONNECTIONS - 1, 'tight')).toBe('tight');
    expect(heapModeFor(ROOMY_BELOW_CONNECTIONS, 'tight')).toBe('tight');
    expect(heapModeFor(ROOMY_BELOW_CONNECTIONS - 1, 'tight')).toBe('roomy');
  });

  // V8 flags are process-wide: the settings run in a child process of their own, with the
  // service unit's young-generation cap.
  it('keep the old generation near what is live once many connections are open, where V8 own lets it grow', () => {
    const r = spawnSync(process.execPath, ['--max-semi-space-size=2', '--import', 'tsx', FIXTURE], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const { phases } = JSON.parse(r.stdout) as { phases: Array<{ mode: string; oldCommittedMB: number }> };
    const [roomy, tight] = phases;
    expect(roomy?.mode).toBe('roomy');
    expect(tight?.mode).toBe('tight');
    // Measured: 48–68 MB with V8's own factor, 23–29 MB tight, for the same live set and churn.
    expect(tight!.oldCommittedMB).toBeLessThan(roomy!.oldCommittedMB * 0.7);
  });
});
