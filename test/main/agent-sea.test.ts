/**
 * Builds the agent's single-executable application (scripts/build-agent-sea.ts) for real and
 * runs it: commands that need no root, from a directory without the source tree.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATAPLANE_BINARY } from '../../native/dataplane/dataplane-process.js';
import { buildAgentSea, KOFFI_NATIVE, SEA_FUSE, seaUnsupportedReason, type AgentSeaResult } from '../../scripts/build-agent-sea.js';

const unsupported = seaUnsupportedReason();
if (unsupported) console.log(`skipping the agent SEA tests: ${unsupported}`);

describe.skipIf(unsupported !== undefined)('agent single-executable application', () => {
  let dir = '';
  let sea: AgentSeaResult;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'zcc-sea-'));
    sea = await buildAgentSea({ outDir: path.join(dir, 'agent'), workDir: path.join(dir, 'build') });
    const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    console.log(`agent SEA: ${mib(sea.bytes.executable)} + ${KOFFI_NATIVE} ${mib(sea.bytes.koffiNative)}, bundle ${mib(sea.bytes.bundle)}, built in ${Math.round(sea.ms.total)} ms`);
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the SEA (or a link to it) in the temporary directory, without the caller's NODE_OPTIONS. */
  function run(args: string[], exe = sea.executable): { status: number | null; stdout: string; stderr: string } {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const r = spawnSync(exe, args, { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('is one executable with the SEA fuse flipped, and koffi.node (and zcc-dataplane) next to it', () => {
    const shipped = [KOFFI_NATIVE, path.basename(sea.executable), ...(sea.dataplane ? [DATAPLANE_BINARY] : [])];
    expect(readdirSync(path.dirname(sea.executable)).sort()).toEqual(shipped.sort());
    expect(statSync(sea.executable).mode & 0o111).toBe(0o111);
    // postject flips the sentinel's ":0" to ":1"; Node then runs the embedded blob.
    expect(readFileSync(sea.executable).includes(`${SEA_FUSE}:1`)).toBe(true);
    const bundle = readFileSync(sea.bundle, 'utf8');
    expect(bundle).not.toMatch(/\bimport\.meta\b/);
    expect(bundle).not.toContain('scripts/build-renderer');
  });

  it('without arguments prints the usage and exits 0 (no UI build, no Node warning)', () => {
    const r = run([]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^usage: zcc <command>/);
    expect(r.stderr).toContain('dr          keygen|record|verify');
    expect(r.stderr).not.toMatch(/ExperimentalWarning|single executable/i);
    expect(existsSync(path.join(dir, 'agent', 'out'))).toBe(false);
  });

  it('ships a zcc-dataplane that runs from the install directory (or says why it could not be built)', (ctx) => {
    if (!sea.dataplane) {
      console.log(`SKIP shipped zcc-dataplane: ${sea.dataplaneSkipped}`);
      expect(sea.dataplaneSkipped).toMatch(/cannot build the native data plane/);
      return ctx.skip();
    }
    expect(sea.dataplane).toBe(path.join(path.dirname(sea.executable), DATAPLANE_BINARY));
    expect(statSync(sea.dataplane).mode & 0o755).toBe(0o755);
    const r = spawnSync(sea.dataplane, ['check'], { cwd: dir, encoding: 'utf8' });
    expect(`${r.status} ${r.stdout.trim()}`).toBe('0 ok');
  });

  it('dr keygen, record and verify: Ed25519 keys and signatures from the embedded runtime', () => {
    const keys = path.join(dir, 'dr-keys');
    const keygen = run(['dr', 'keygen', '--out', keys]);
    expect(keygen.status, keygen.stderr).toBe(0);
    expect(statSync(path.join(keys, 'dr.key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(keys, 'dr.pub.pem'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);

    const record = run(['dr', 'record', '--mode', 'on', '--key', path.join(keys, 'dr.key.pem'), '--format', 'raw']);
    expect(record.status, record.stderr).toBe(0);
    const txt = record.stdout.trim();
    expect(txt).toMatch(/^v=1; b=on; .*bh=/);

    const verify = run(['dr', 'verify', '--pub', path.join(keys, 'dr.pub.pem'), txt]);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^VALID signed b=on/);

    const tampered = run(['dr', 'verify', '--pub', path.join(keys, 'dr.pub.pem'), txt.replace('b=on', 'b=off')]);
    expect(tampered.status).toBe(1);
    expect(tampered.stdout).toMatch(/^INVALID/m);
  });

  it('loads koffi.node from next to the executable, not from node_modules', () => {
    // Only commands that need it load it (the CLI imports each command's code when it runs):
    // `zcc agent` does, and stops at once here on an invalid --socks address.
    let n = 0;
    const agent = (exe: string): { status: number | null; stderr: string } => {
      const state = path.join(dir, `agent-state-${++n}`);
      return run(['agent', '--socks', 'not:an:addr', '--no-dns', '--managed', 'none', '--config', path.join(state, 'config.json'), '--state-dir', state, '--socket', path.join(state, 'api.sock')], exe);
    };
    const loaded = (r: { stderr: string }): void => {
      expect(r.stderr).not.toContain('Cannot find the native Koffi module');
      expect(r.stderr).toContain('--socks: expected HOST:PORT');
    };
    // Hard links: same binary, no 100 MB copies.
    const alone = path.join(dir, 'alone');
    mkdirSync(alone);
    const exe = path.join(alone, path.basename(sea.executable));
    linkSync(sea.executable, exe);
    expect(run([], exe).status).toBe(0);
    const without = agent(exe);
    expect(without.status).not.toBe(0);
    expect(without.stderr).toContain('Cannot find the native Koffi module');
    linkSync(sea.koffiNative, path.join(alone, KOFFI_NATIVE));
    loaded(agent(exe));
    // Started through a symbolic link (/usr/bin/zcc in the packages): process.execPath is the
    // real file, so koffi.node is still found next to it.
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(exe, path.join(bin, 'zcc'));
    loaded(agent(path.join(bin, 'zcc')));
  });
});
