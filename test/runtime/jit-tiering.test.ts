import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'tier-up.ts');

/** Calls of a connection-sized function before V8 marks it for optimisation, in a fresh process. */
function callsUntilOptimised(mode: 'early' | 'default'): number {
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', FIXTURE, mode], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout.trim()) as { calls: number; limit: number };
  expect(out.calls, `${mode}: never marked for optimisation`).toBeLessThan(out.limit);
  return out.calls;
}

describe('the data-plane JIT budget (tierUpEarly)', () => {
  // V8 flags are process-wide, so each case runs in a child. V8's tiering counts bytecode run,
  // not time: the counts are the same from run to run (measured: 1,757 default, 116 early).
  it('has V8 optimise per-connection code after a few hundred connections, not thousands', () => {
    const early = callsUntilOptimised('early');
    const byDefault = callsUntilOptimised('default');
    expect(early).toBeLessThan(300);
    expect(byDefault).toBeGreaterThan(early * 4);
  });
});
