// Whatever the intercept changes on the host (route, nft table, journal) is gone after a clean
// stop and after an uncaught exception, and survives a SIGKILL only until the next start.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOURNAL_FILE } from '../../src/agent/intercept/kernel/journal.js';
import { AgentFixture, Netns, netnsUnavailable } from './netns.js';

const skip = await netnsUnavailable();
if (skip) console.log(`SKIP test/intercept-kernel/cleanup: ${skip}`);

describe.skipIf(!!skip)('kernel intercept cleanup', () => {
  let ns: Netns;
  let stateDir: string;
  const fixtures: AgentFixture[] = [];
  const start = async (): Promise<{ fixture: AgentFixture; removedLeftovers: number }> => {
    const { fixture, ready } = await AgentFixture.start(ns, { stateDir });
    fixtures.push(fixture);
    return { fixture, removedLeftovers: Number(ready.logsAtStart) };
  };
  const curlApp = async (): Promise<string> => {
    const ip = (await ns.run('dig', ['@127.0.0.1', '+short', 'app.kern.test'])).stdout.trim();
    return (await ns.run('curl', ['-sS', '-m', '10', `http://${ip}:8000/`])).stdout;
  };
  const journal = (): string => join(stateDir, JOURNAL_FILE);

  beforeAll(async () => {
    ns = await Netns.create();
    stateDir = await mkdtemp(join(tmpdir(), 'zcc-kstate-'));
  });

  afterAll(async () => {
    for (const f of fixtures) await f.kill();
    await ns?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('leaves table, route and journal behind a SIGKILL; the next start removes them and applies afresh', async () => {
    const first = await start();
    expect(first.removedLeftovers).toBe(0);
    expect(await curlApp()).toBe('hello from 8000\n');
    const pid = first.fixture.child.pid;
    await first.fixture.kill();
    expect(await ns.zccTable()).toBeDefined();
    expect(await ns.zccRoutes()).toContain('100.64.0.0/10');
    expect(JSON.parse(await readFile(journal(), 'utf8'))).toMatchObject({ pid, nftTable: 'inet zcc', routeProto: 122 });

    const second = await start();
    expect(second.removedLeftovers).toBe(1);
    expect(await curlApp()).toBe('hello from 8000\n');
    expect((await ns.zccRoutes()).split('\n')).toHaveLength(1);
    expect(JSON.parse(await readFile(journal(), 'utf8'))).toMatchObject({ pid: second.fixture.child.pid });

    await second.fixture.stop();
    expect(await ns.zccTable()).toBeUndefined();
    expect(await ns.zccRoutes()).toBe('');
    expect(existsSync(journal())).toBe(false);
  });

  it('removes everything when the agent dies of an uncaught exception', async () => {
    const { fixture, removedLeftovers } = await start();
    expect(removedLeftovers).toBe(0); // the clean stop above left nothing
    expect(await ns.zccTable()).toBeDefined();
    const gone = new Promise((r) => fixture.child.once('exit', r));
    fixture.child.send({ type: 'crash' });
    await gone;
    expect(fixture.child.exitCode).not.toBe(0);
    expect(await ns.zccTable()).toBeUndefined();
    expect(await ns.zccRoutes()).toBe('');
    expect(existsSync(journal())).toBe(false);
  });
});
