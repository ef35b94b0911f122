import { readFileSync } from 'node:fs';
import { chmod, lstat, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectBackend } from '../../src/agent/dns/os-resolver/backend-direct.js';
import { restoreFromJournal, takeOverSystemDns, type TakeOverOptions } from '../../src/agent/dns/os-resolver/index.js';
import { Journal, JOURNAL_FILE } from '../../src/agent/dns/os-resolver/journal.js';
import { parseResolvConf } from '../../src/agent/dns/os-resolver/resolv-conf.js';
import { LogCapture, waitUntil } from '../helpers/log-capture.js';
import { fakeRunner, memoryJournal } from './fakes.js';

/**
 * The file backend on a resolv.conf in a temporary directory (resolvConfPath), so no root and
 * no namespace are needed: everything except the libc resolver actually reading it, which
 * namespace.test.ts covers.
 */

const ORIGINAL = '# written by dhclient\nnameserver 10.0.0.1\nsearch corp.example\noptions edns0 timeout:2\n; no newline at the end';
const AGENT = '127.0.1.53';
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function setup(content: string | null = ORIGINAL, mode = 0o640) {
  const dir = await mkdtemp(join(tmpdir(), 'zcc-dns-direct-'));
  dirs.push(dir);
  const path = join(dir, 'resolv.conf');
  if (content !== null) {
    await writeFile(path, content);
    await chmod(path, mode);
  }
  const logs = new LogCapture('dns-os');
  const seen: string[][] = [];
  const opts: TakeOverOptions = {
    stateDir: join(dir, 'state'),
    agentAddress: AGENT,
    appDomains: ['*.apps.demo.internal', 'intranet.demo.internal'],
    searchDomains: ['demo.internal'],
    log: logs.log,
    resolvConfPath: path,
    onUpstreams: (u) => seen.push(u),
    // Long enough that only the file watch can explain a quick reaction.
    pollMs: 60_000,
    run: fakeRunner().run,
  };
  return { dir, path, logs, seen, opts, journalPath: join(dir, 'state', JOURNAL_FILE) };
}

describe('direct resolv.conf takeover', () => {
  it('points the file at the agent, keeps search and options, and restores it byte for byte with its mode', async () => {
    const t = await setup();
    let contentWhenTold = '';
    const dns = await takeOverSystemDns({ ...t.opts, onUpstreams: () => (contentWhenTold = readFileSync(t.path, 'utf8')) });
    expect(dns.manager).toBe('direct');
    expect(dns.upstreams).toEqual(['10.0.0.1']);
    // The DNS server learns its upstreams before the OS sends it anything.
    expect(contentWhenTold).toBe(ORIGINAL);
    const taken = parseResolvConf(await readFile(t.path, 'utf8'));
    expect(taken.nameservers).toEqual([AGENT]);
    expect(taken.search).toEqual(['corp.example', 'demo.internal']);
    expect(taken.options).toEqual(['edns0 timeout:2']);
    expect((await stat(t.journalPath)).mode & 0o777).toBe(0o600);
    const journal = JSON.parse(await readFile(t.journalPath, 'utf8'));
    expect(journal).toMatchObject({ version: 1, manager: 'direct', agentAddress: AGENT, previousUpstreams: ['10.0.0.1'] });
    expect(Buffer.from(journal.data.backup.contentBase64, 'base64').toString()).toBe(ORIGINAL);

    await dns.release();
    await dns.release();
    expect(await readFile(t.path, 'utf8')).toBe(ORIGINAL);
    expect((await stat(t.path)).mode & 0o7777).toBe(0o640);
    await expect(stat(t.journalPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the journal before changing the file', async () => {
    const t = await setup();
    const journal = memoryJournal(() => expect(readFileSync(t.path, 'utf8')).toBe(ORIGINAL));
    const b = new DirectBackend({ path: t.path, agentAddress: AGENT, journal, log: t.logs.log });
    await b.apply({ agentAddress: AGENT, appDomains: [], searchDomains: [], previousUpstreams: [] });
    expect(journal.entries).toHaveLength(1);
    expect(await readFile(t.path, 'utf8')).not.toBe(ORIGINAL);
  });

  it('replaces a resolved-style symlink when resolved cannot be configured, and puts the same symlink back', async () => {
    const t = await setup(null);
    await writeFile(join(t.dir, 'stub-resolv.conf'), '# managed by man:systemd-resolved(8)\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n');
    await symlink('stub-resolv.conf', t.path);
    const { run, calls } = fakeRunner({ resolvectl: new Error('Link lo is loopback device.') });
    const dns = await takeOverSystemDns({ ...t.opts, backend: 'systemd-resolved', run });
    expect(calls[0]?.cmd).toBe('resolvectl dns lo 127.0.1.53');
    expect(dns.manager).toBe('direct');
    expect(dns.upstreams).toEqual(['127.0.0.53']);
    expect((await lstat(t.path)).isFile()).toBe(true);
    expect(t.logs.find((l) => /taking over resolv.conf instead/.test(l.msg))).toBeDefined();
    await dns.release();
    expect((await lstat(t.path)).isSymbolicLink()).toBe(true);
    expect(await readlink(t.path)).toBe('stub-resolv.conf');
  });

  it('creates a missing file and removes it again', async () => {
    const t = await setup(null);
    const dns = await takeOverSystemDns(t.opts);
    expect(dns.upstreams).toEqual([]);
    expect(parseResolvConf(await readFile(t.path, 'utf8')).nameservers).toEqual([AGENT]);
    await dns.release();
    await expect(lstat(t.path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses an agent address whose port is not 53, changing nothing', async () => {
    const t = await setup();
    await expect(takeOverSystemDns({ ...t.opts, agentAddress: '127.0.1.53:5353' })).rejects.toThrow(/port 53/);
    expect(await readFile(t.path, 'utf8')).toBe(ORIGINAL);
    await expect(stat(t.journalPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('crash safety', () => {
  /** What a process that applied and then died leaves behind. */
  async function crashedAgent(t: Awaited<ReturnType<typeof setup>>): Promise<void> {
    const b = new DirectBackend({ path: t.path, agentAddress: AGENT, journal: new Journal(t.opts.stateDir), log: t.logs.log });
    await b.apply({ agentAddress: AGENT, appDomains: [], searchDomains: ['demo.internal'], previousUpstreams: ['10.0.0.1'] });
  }

  it('restores from the journal first, then takes over again, and ends with the original', async () => {
    const t = await setup();
    await crashedAgent(t);
    expect(await readFile(t.path, 'utf8')).not.toBe(ORIGINAL);
    const dns = await takeOverSystemDns(t.opts);
    expect(t.logs.find((l) => l.msg === 'dns: restored from journal')).toBeDefined();
    // Learned from the restored original, not from the leftover that names the agent.
    expect(dns.upstreams).toEqual(['10.0.0.1']);
    await dns.release();
    expect(await readFile(t.path, 'utf8')).toBe(ORIGINAL);
  });

  it('leaves a file someone else wrote after the crash alone', async () => {
    const t = await setup();
    await crashedAgent(t);
    await writeFile(t.path, 'nameserver 10.9.9.9\n');
    expect(await restoreFromJournal({ stateDir: t.opts.stateDir, log: t.logs.log, resolvConfPath: t.path })).toBe('direct');
    expect(await readFile(t.path, 'utf8')).toBe('nameserver 10.9.9.9\n');
    await expect(stat(t.journalPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('without a journal, rebuilds the previous file from a leftover agent file', async () => {
    const t = await setup();
    await crashedAgent(t);
    await rm(t.journalPath);
    const dns = await takeOverSystemDns(t.opts);
    expect(dns.upstreams).toEqual(['10.0.0.1']);
    await dns.release();
    const back = parseResolvConf(await readFile(t.path, 'utf8'));
    expect(back.nameservers).toEqual(['10.0.0.1']);
    expect(back.options).toEqual(['edns0 timeout:2']);
  });

  it('refuses to touch a takeover held by a live agent, and treats one from before a reboot as a leftover', async () => {
    const t = await setup();
    await crashedAgent(t);
    const journal = JSON.parse(await readFile(t.journalPath, 'utf8'));
    const taken = await readFile(t.path, 'utf8');
    await writeFile(t.journalPath, JSON.stringify({ ...journal, pid: process.ppid }));
    await expect(takeOverSystemDns(t.opts)).rejects.toThrow(/held by another agent/);
    expect(await readFile(t.path, 'utf8')).toBe(taken);
    await writeFile(t.journalPath, JSON.stringify({ ...journal, pid: process.ppid, bootId: 'an-earlier-boot' }));
    expect(await restoreFromJournal({ stateDir: t.opts.stateDir, log: t.logs.log, resolvConfPath: t.path })).toBe('direct');
    expect(await readFile(t.path, 'utf8')).toBe(ORIGINAL);
  });

  it('keeps a corrupt journal aside, says so loudly and carries on', async () => {
    const t = await setup();
    await crashedAgent(t);
    await writeFile(t.journalPath, '{ not json');
    const dns = await takeOverSystemDns(t.opts);
    expect(t.logs.find((l) => l.level >= 50 && /journal unreadable/.test(l.msg))).toBeDefined();
    expect((await readdir(t.opts.stateDir)).some((n) => n.startsWith(`${JOURNAL_FILE}.corrupt-`))).toBe(true);
    expect(dns.upstreams).toEqual(['10.0.0.1']);
    await dns.release();
  });
});

describe('someone else rewrites resolv.conf', () => {
  it('notices a new file renamed over it, learns the new upstream, applies again, and restores the newer file', async () => {
    const t = await setup();
    const dns = await takeOverSystemDns(t.opts);
    const dhcp = '# dhclient again\nnameserver 10.0.0.2\nsearch corp.example\n';
    await writeFile(`${t.path}.dhclient-new`, dhcp);
    await rename(`${t.path}.dhclient-new`, t.path);
    await waitUntil(() => dns.upstreams[0] === '10.0.0.2', 3_000, 'new upstreams');
    expect(t.seen.at(-1)).toEqual(['10.0.0.2']);
    await waitUntil(async () => parseResolvConf(await readFile(t.path, 'utf8')).nameservers[0] === AGENT, 3_000, 're-applied file');
    expect(t.logs.find((l) => /changed by someone else/.test(l.msg))).toBeDefined();
    await dns.release();
    expect(await readFile(t.path, 'utf8')).toBe(dhcp);
  });

  it('notices an in-place rewrite too', async () => {
    const t = await setup();
    const dns = await takeOverSystemDns(t.opts);
    await writeFile(t.path, 'nameserver 10.0.0.3\n');
    await waitUntil(() => dns.upstreams[0] === '10.0.0.3', 3_000, 'new upstreams');
    await waitUntil(async () => parseResolvConf(await readFile(t.path, 'utf8')).nameservers[0] === AGENT, 3_000, 're-applied file');
    await dns.release();
    expect(await readFile(t.path, 'utf8')).toBe('nameserver 10.0.0.3\n');
  });

  it('catches changes by polling when no watch event arrives (recheck is the same path)', async () => {
    const t = await setup();
    const dns = await takeOverSystemDns(t.opts);
    await writeFile(t.path, 'nameserver 10.0.0.4\n');
    await dns.recheck();
    expect(dns.upstreams).toEqual(['10.0.0.4']);
    await dns.release();
  });
});
