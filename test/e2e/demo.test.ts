import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnZcc, type ZccProcess } from '../helpers/spawn-zcc.js';

const run = promisify(execFile);

describe('zcc demo (what npm start runs)', () => {
  let demo: ZccProcess;

  beforeAll(async () => {
    demo = await spawnZcc(['demo', '--headless', '--socks', '127.0.0.1:0', '--http-proxy', '127.0.0.1:0'], {}, 60_000);
  });

  afterAll(async () => {
    await demo?.stop('SIGKILL');
  });

  it('prints READY with its listen addresses', () => {
    expect(demo.ready.socks).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(demo.ready.httpProxy).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('serves the intranet page through curl --socks5-hostname', async () => {
    const { stdout } = await run('curl', ['-sS', '--fail', '--max-time', '10', '--socks5-hostname', String(demo.ready.socks), 'http://intranet.demo.internal/']);
    expect(stdout).toContain('demo intranet');
  });

  it('serves a wildcard app and the echo app through the HTTP CONNECT proxy', async () => {
    const { stdout } = await run('curl', ['-sS', '--fail', '--max-time', '10', '-p', '-x', `http://${String(demo.ready.httpProxy)}`, 'http://team.apps.demo.internal:8080/']);
    expect(stdout).toContain('demo app team.apps.demo.internal');
  });

  it('refuses a name that is no app, with the SOCKS "not allowed" reply', async () => {
    const err = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', String(demo.ready.socks), 'http://www.example.com/']).catch((e: { code: number }) => e);
    expect((err as { code: number }).code).toBe(97);
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await demo.stop('SIGTERM')).toBe(0);
  });
});
