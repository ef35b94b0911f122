import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parsePlist } from 'plist';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(import.meta.dirname, '..', '..');
const UNIT = readFileSync(path.join(ROOT, 'resources', 'systemd', 'zcc-agent.service'), 'utf8');
const NSIS = readFileSync(path.join(ROOT, 'resources', 'packaging', 'windows', 'installer.nsh'), 'utf8');
const PLIST = parsePlist(readFileSync(path.join(ROOT, 'resources', 'packaging', 'macos', 'org.zcc.agent.plist'), 'utf8')) as { EnvironmentVariables?: Record<string, string> };

/** Allocates survivors the way a burst of connection opens does, then prints V8's young generation size. */
const BURST = `
const v8 = require('node:v8');
const keep = [];
for (let i = 0; i < 400000; i++) keep.push({ i, s: 'x' + i, a: [i] });
const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
process.stdout.write(String(young));
`;

const ARENAS_FIXTURE = path.join(ROOT, 'test', 'fixtures', 'malloc-arenas.ts');

/** glibc malloc arenas after four threads allocated at once, in a child with `env` added. */
function mallocArenas(env: Record<string, string>): number {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('MALLOC_ARENA_MAX' in env)) delete childEnv.MALLOC_ARENA_MAX;
  const r = spawnSync(process.execPath, ['--import', 'tsx', ARENAS_FIXTURE], { env: childEnv, encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr.split('\n').filter((l) => /^Arena \d+:/.test(l)).length;
}

function youngGenerationAfterBurst(nodeOptions: string | undefined): number {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  if (nodeOptions !== undefined) env.NODE_OPTIONS = nodeOptions;
  const r = spawnSync(process.execPath, ['-e', BURST], { env, encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout);
}

describe('the Node options the agent service runs with', () => {
  const unitOptions = /^Environment=NODE_OPTIONS=(.*)$/m.exec(UNIT)?.[1];

  it('are the same for systemd, launchd and the Windows service', () => {
    expect(unitOptions).toBe('--max-semi-space-size=2');
    expect(PLIST.EnvironmentVariables?.NODE_OPTIONS).toBe(unitOptions);
    // The installer writes the service's Environment value with reg.exe after creating it.
    const windows = /Services\\zcc-agent" \/v Environment \/t REG_MULTI_SZ \/d "NODE_OPTIONS=([^"]*)"/.exec(NSIS)?.[1];
    expect(windows).toBe(unitOptions);
    expect(NSIS.indexOf('/v Environment')).toBeGreaterThan(NSIS.indexOf('sc.exe" create zcc-agent'));
  });

  it('are accepted in NODE_OPTIONS and cap the young generation at 2 x 2 MiB, which a burst grows past without them', () => {
    const capped = youngGenerationAfterBurst(unitOptions);
    const uncapped = youngGenerationAfterBurst(undefined);
    expect(capped).toBeLessThanOrEqual(2 * 2 * 1024 * 1024 + 64 * 1024);
    expect(uncapped).toBeGreaterThan(capped);
  });

  // MALLOC_ARENA_MAX is glibc's: elsewhere (macOS, Windows, musl) the variable means nothing.
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime !== undefined;
  if (!glibc) console.log('skipped: the MALLOC_ARENA_MAX check needs glibc');
  it.skipIf(!glibc)('on Linux, keep every thread of the agent on one glibc malloc arena (MALLOC_ARENA_MAX), where threads allocating at once grow several', () => {
    const arenaMax = /^Environment=MALLOC_ARENA_MAX=(\d+)$/m.exec(UNIT)?.[1];
    expect(arenaMax).toBe('1');
    expect(mallocArenas({ MALLOC_ARENA_MAX: arenaMax ?? '' })).toBe(1);
    expect(mallocArenas({})).toBeGreaterThan(1);
  });
});
