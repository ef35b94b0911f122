import { execFile } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDnsmasq, startDnsmasq } from '../../src/cli/demo-dr-dns.js';
import { toTxtStrings } from '../../src/protocol/dr-record.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** Runs `zcc ARGS` as a real process: exit code and output. */
function zcc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'zcc'), ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const lines = (s: string): string[] => s.split('\n').filter(Boolean);

// Every call is a real `zcc` process (tsx compiles the CLI at start): slow on a loaded machine.
describe('zcc dr: keygen, record, verify', { timeout: 180_000 }, () => {
  let dir: string;
  let key: string;
  let pub: string;
  let otherPub: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zcc-dr-cli-'));
    key = join(dir, 'k', 'dr.key.pem');
    pub = join(dir, 'k', 'dr.pub.pem');
    otherPub = join(dir, 'other', 'dr.pub.pem');
    const a = await zcc('dr', 'keygen', '--out', join(dir, 'k'));
    expect(a.code, a.stderr).toBe(0);
    // Another DR key, as an attacker would have: made in-process to save a process start.
    await mkdir(join(dir, 'other'));
    await writeFile(otherPub, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
  }, 180_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keygen writes a 0600 private key and a public key, and never replaces a key', async () => {
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect((await stat(pub)).mode & 0o777).toBe(0o644);
    const again = await zcc('dr', 'keygen', '--out', join(dir, 'k'));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to replace/);
  });

  it('signed records verify with their public key only, including in several parts', async () => {
    const three = await zcc('dr', 'record', '--mode', 'on', '--key', key, '--parts', '3', '--valid-hours', '2', '--format', 'raw');
    expect(three.code, three.stderr).toBe(0);
    expect(lines(three.stdout)).toHaveLength(3);
    const [ok, wrongKey, missingPart] = await Promise.all([
      zcc('dr', 'verify', '--pub', pub, ...lines(three.stdout).reverse()),
      zcc('dr', 'verify', '--pub', otherPub, ...lines(three.stdout)),
      zcc('dr', 'verify', '--pub', pub, ...lines(three.stdout).slice(1)),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^VALID signed b=on k=zpa m=fo .* ZPA mode on$/m);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toMatch(/INVALID .*signature does not verify/);
    expect(missingPart.code).toBe(1);
    expect(missingPart.stdout).toMatch(/part\(s\) 1 of 3 missing/);
  });

  it('prints zone-file and dnsmasq forms; unsigned records only with --unsigned on both sides', async () => {
    const [all, unsigned, noKey] = await Promise.all([
      zcc('dr', 'record', '--mode', 'test', '--key', key, '--domain', 'dr.acme.test', '--kind', 'all', '--forwarding', 'wf'),
      zcc('dr', 'record', '--mode', 'on', '--unsigned', '--format', 'raw'),
      zcc('dr', 'record', '--mode', 'on'),
    ]);
    expect(all.stdout).toMatch(/^dr\.acme\.test\. 300 IN TXT "v=1; b=test; k=all; m=wf; t=\d{8}T\d{6}Z; x=\d{8}T\d{6}Z; n=1; p=1; bh=[^"]+"$/m);
    expect(all.stdout).toMatch(/^--txt-record=dr\.acme\.test,"v=1; b=test; .*"$/m);
    expect(lines(unsigned.stdout)[0]).toMatch(/^v=1; b=on; k=zpa; m=fo; t=\S+; x=\S+$/);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/--key PRIV, or --unsigned/);
    const [asUnsigned, asSigned] = await Promise.all([zcc('dr', 'verify', '--unsigned', ...lines(unsigned.stdout)), zcc('dr', 'verify', '--pub', pub, ...lines(unsigned.stdout))]);
    expect(asUnsigned.code).toBe(0);
    expect(asSigned.code).toBe(1);
    expect(asSigned.stdout).toMatch(/unsigned, but a DR public key is configured/);
  });

  it.skipIf(!findDnsmasq())('round trip through dnsmasq: records from the tool, served, fetched and verified', async () => {
    const made = await zcc('dr', 'record', '--mode', 'on', '--key', key, '--parts', '2', '--format', 'raw');
    const server = await startDnsmasq({ domain: 'dr.acme.test', txt: lines(made.stdout).map(toTxtStrings), a: ['127.0.0.1'] });
    try {
      const r = new dns.Resolver();
      r.setServers([server.address]);
      const fetched = (await r.resolveTxt('dr.acme.test')).map((strings) => strings.join(''));
      expect(fetched).toHaveLength(2);
      const v = await zcc('dr', 'verify', '--pub', pub, ...fetched);
      expect(v.code, v.stdout).toBe(0);
    } finally {
      await server.close();
    }
  });
});
