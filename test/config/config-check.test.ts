// `zcc config check FILE` as an administrator runs it: the real bin/zcc in a child process.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfigFile } from '../../src/cli/config-check.js';
import { FIXTURES, tempDir } from './helpers.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function zcc(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'zcc'), ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(() => cleanup());

describe('zcc config check', () => {
  const f = (name: string) => path.join(dir, name);
  const fixture = (name: string) => path.join(FIXTURES, name);

  it('spawned: exit 0 with "FILE: OK", exit 1 with the message for an unknown key and for broken JSON', { timeout: 180_000 }, async () => {
    await writeFile(f('good.json'), JSON.stringify({ dns: { searchDomains: ['corp.example'] }, tenants: [] }));
    await writeFile(f('unknown.json'), JSON.stringify({ dns: { searchDomain: ['corp.example'] } }));
    await writeFile(f('broken.json'), '{"dns": {"searchDomains": ["corp.example"]}');
    // Spawned together, and only these three: each start of the CLI loads the whole TypeScript
    // tree through tsx (seconds each); the other cases run the same function in-process below.
    const [good, unknown, broken] = await Promise.all([
      zcc('config', 'check', f('good.json')),
      zcc('config', 'check', f('unknown.json')),
      zcc('config', 'check', f('broken.json')),
    ]);
    expect(good).toEqual({ code: 0, stdout: `${f('good.json')}: OK\n`, stderr: '' });
    expect(unknown).toEqual({
      code: 1,
      stdout: '',
      stderr: `${f('unknown.json')}: invalid configuration\n  dns.searchDomain: unknown key (expected one of: listen, searchDomains, domainValidation, poolCidr)\n`,
    });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(new RegExp(`^${f('broken.json').replace(/[/.]/g, '\\$&')}: invalid JSON: .*\\(line 1, column 44: expected "," or "}"\\)\\n$`));
  });

  it('in-process: wrong type, a layer that leaves required keys to another source, a missing file, every format', async () => {
    await writeFile(f('type.json'), JSON.stringify({ timeouts: { udpIdleSeconds: '60' } }));
    await writeFile(f('partial.json'), JSON.stringify({ dr: { pollIntervalSeconds: 600 } }));
    expect(await checkConfigFile(f('type.json'))).toEqual({ ok: false, text: `${f('type.json')}: invalid configuration\n  timeouts.udpIdleSeconds: expected number, got "60"` });
    expect(await checkConfigFile(f('partial.json'))).toEqual({
      ok: true,
      text: `${f('partial.json')}: OK\n  note: dr.domain is required and must come from another source\n  note: dr.publicKey is required and must come from another source`,
    });
    const missing = await checkConfigFile(f('missing.json'));
    expect(missing.ok).toBe(false);
    expect(missing.text).toMatch(/^.*missing\.json: cannot read: ENOENT/);
    for (const [name, format] of [['com.zcc.agent.plist'], ['zcc-policy.reg'], ['zcc-policy.reg.json', 'reg-json']] as const) {
      expect(await checkConfigFile(fixture(name), format)).toEqual({ ok: true, text: `${fixture(name)}: OK` });
    }
    expect(await checkConfigFile(fixture('zcc-policy.reg'), 'yaml')).toEqual({ ok: false, text: `${fixture('zcc-policy.reg')}: unknown format "yaml" (expected json, plist, reg, reg-json)` });
  });
});
