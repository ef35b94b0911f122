import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeDrRecord, type DrMode } from '../../src/protocol/dr-record.js';
import { waitUntil } from '../helpers/log-capture.js';
import { socksConnect } from '../helpers/socks-client.js';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';

/** An HTTP GET through the demo's SOCKS5 listener: the body, or the SOCKS refusal. */
async function get(socks: string, host: string, port: number): Promise<string> {
  const [h, p] = socks.split(':');
  const s = await socksConnect({ host: h!, port: Number(p) }, host, port);
  s.resume();
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.end(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
  await new Promise((r) => s.once('close', r));
  return Buffer.concat(chunks).toString();
}

const ZCC = join(import.meta.dirname, '..', '..', 'bin', 'zcc');

/** `zcc status --json` against the demo's agent, as a user runs it. */
async function statusJson(dataDir: string): Promise<{ safeMode: boolean; tenants: Array<{ id: string; connection: string; dr?: { mode: string; active: boolean } }> }> {
  const { stdout } = await promisify(execFile)(process.execPath, [ZCC, 'status', '--json', '--data-dir', dataDir]);
  return JSON.parse(stdout) as Awaited<ReturnType<typeof statusJson>>;
}

/** `zcc demo --dr` as a user runs it: records go into the file the demo watches. */
describe('zcc demo --dr', { timeout: 120_000 }, () => {
  let demo: ZccProcess;
  let dr: Record<string, string>;
  let socks: string;

  beforeAll(async () => {
    demo = await spawnZcc(['demo', '--dr', '--headless', '--socks', '127.0.0.1:0', '--http-proxy', '127.0.0.1:0'], {}, 90_000);
    dr = demo.ready.dr as Record<string, string>;
    socks = demo.ready.socks as string;
  }, 120_000);
  afterAll(async () => {
    await demo?.stop('SIGTERM');
  });

  async function publish(mode: DrMode): Promise<void> {
    const key = createPrivateKey(await readFile(dr.privateKey!, 'utf8'));
    const t = new Date(Math.floor(Date.now() / 1000) * 1000);
    const lines = encodeDrRecord({ v: '1', b: mode, k: 'zpa', m: 'fo', t, x: new Date(t.getTime() + 3_600_000) }, { privateKey: key });
    // Where the printed trigger command writes.
    await writeFile(dr.trigger!.split('> ')[1]!, lines.join('\n') + '\n');
  }

  it('prints how to trigger and end DR', () => {
    expect(dr).toMatchObject({ domain: 'dr.demo.internal', drApps: ['intranet.demo.internal', 'echo.demo.internal'] });
    expect(dr.trigger).toMatch(/^zcc dr record --mode on --key \S+dr\.key\.pem .*--format raw > \S+records\.txt$/);
    expect(dr.end).toMatch(/--mode off/);
  });

  it('on: Safe Mode, DR app reachable, the other refused; off: back to normal', async () => {
    await publish('on');
    await waitUntil(() => demo.stderr().includes('SAFE MODE'), 60_000, 'Safe Mode in the demo log');
    const body = await waitUntil(() => get(socks, 'intranet.demo.internal', 80).catch(() => undefined), 30_000, 'intranet through the PSE');
    expect(body).toContain('demo intranet');
    expect(demo.stderr()).toMatch(/"proc":"pse".*"msg":"microtunnel stitched"/);
    await expect(get(socks, 'x.apps.demo.internal', 8080)).rejects.toThrow(/SOCKS reply/);
    const inDr = await statusJson(demo.ready.dataDir as string);
    expect(inDr.safeMode).toBe(true);
    expect(inDr.tenants[0]).toMatchObject({ id: 'demo', connection: 'safe-mode', dr: { mode: 'on', active: true } });

    await publish('off');
    await waitUntil(() => demo.stderr().includes('disaster recovery ended'), 60_000, 'DR ended in the demo log');
    const back = await waitUntil(() => get(socks, 'x.apps.demo.internal', 8080).catch(() => undefined), 30_000, 'apps through the cloud again');
    expect(back).toContain('x.apps.demo.internal');
    const after = await statusJson(demo.ready.dataDir as string);
    expect(after.safeMode).toBe(false);
    expect(after.tenants[0]).toMatchObject({ connection: 'connected', dr: { mode: 'off', active: false } });
  });
});
