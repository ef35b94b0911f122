import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkManagerBackend, nmServersExcept } from '../../src/agent/dns/os-resolver/backend-nm.js';
import { ResolvedBackend, linkValues, resolvedApplyCommands } from '../../src/agent/dns/os-resolver/backend-resolved.js';
import { RECORD_NAME, ResolvconfBackend, recordsExcept } from '../../src/agent/dns/os-resolver/backend-resolvconf.js';
import type { ApplyConfig, CommandDeps } from '../../src/agent/dns/os-resolver/types.js';
import { fakeRunner, memoryJournal } from './fakes.js';

const CFG: ApplyConfig = {
  agentAddress: '127.0.1.53',
  appDomains: ['*.apps.demo.internal', 'intranet.demo.internal', 'partner.example.'],
  searchDomains: ['demo.internal'],
  previousUpstreams: ['10.0.0.1'],
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zcc-backends-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function deps(run: CommandDeps['run'], over: Partial<Omit<CommandDeps, 'journal'>> = {}): CommandDeps & { journal: ReturnType<typeof memoryJournal> } {
  return { run, journal: memoryJournal(), agentAddress: '127.0.1.53', link: 'zcc0', resolvConfPath: join(dir, 'resolv.conf'), ...over };
}

describe('systemd-resolved backend (command construction)', () => {
  beforeAll(() => {
    console.log('NOTE: systemd-resolved does not run on this machine; these tests check the resolvectl commands the backend issues, not their effect.');
  });

  it('gives the agent link the agent server, routing-only app domains, plain search domains and no default route', async () => {
    const { run, calls } = fakeRunner();
    const d = deps(run);
    const b = new ResolvedBackend(d);
    await b.apply(CFG);
    expect(calls.map((c) => c.cmd)).toEqual([
      'resolvectl dns zcc0 127.0.1.53',
      'resolvectl domain zcc0 ~apps.demo.internal ~intranet.demo.internal ~partner.example demo.internal',
      'resolvectl default-route zcc0 false',
      'resolvectl flush-caches',
    ]);
    expect(d.journal.entries).toEqual([{ manager: 'systemd-resolved', agentAddress: '127.0.1.53', previousUpstreams: ['10.0.0.1'], data: { link: 'zcc0' } }]);
  });

  it('passes a non-53 port through (resolved speaks to any port), and falls back to lo', () => {
    expect(resolvedApplyCommands('lo', { ...CFG, agentAddress: '127.0.0.1:5353' })[0]).toEqual(['dns', 'lo', '127.0.0.1:5353']);
    expect(resolvedApplyCommands('lo', { ...CFG, agentAddress: '[fd00::53]:53' })[0]).toEqual(['dns', 'lo', 'fd00::53']);
  });

  it('reverts the link on restore, even if flushing the cache fails', async () => {
    const { run, calls } = fakeRunner({ 'resolvectl flush-caches': new Error('busy') });
    await new ResolvedBackend(deps(run)).restore();
    expect(calls.map((c) => c.cmd)).toEqual(['resolvectl revert zcc0', 'resolvectl flush-caches']);
  });

  it('verifies from resolvectl output and notices a restarted resolved that forgot the link', async () => {
    const good = fakeRunner({
      'resolvectl dns zcc0': 'Link 7 (zcc0): 127.0.1.53\n',
      'resolvectl domain zcc0': 'Link 7 (zcc0): ~apps.demo.internal ~intranet.demo.internal ~partner.example demo.internal\n',
    });
    const b = new ResolvedBackend(deps(good.run));
    expect(await b.verify()).toBe(false); // nothing applied yet
    await b.apply(CFG);
    expect(await b.verify()).toBe(true);
    const forgot = fakeRunner({ 'resolvectl dns zcc0': 'Link 7 (zcc0):\n', 'resolvectl domain zcc0': 'Link 7 (zcc0):\n' });
    const b2 = new ResolvedBackend(deps(forgot.run));
    await b2.apply(CFG);
    expect(await b2.verify()).toBe(false);
    expect(linkValues('Global: 1.1.1.1\nLink 2 (eth0): 10.0.0.1 fe80::1%eth0\n')).toEqual(['10.0.0.1', 'fe80::1%eth0']);
  });

  it('learns upstreams from the non-stub file, never the 127.0.0.53 stub and never the agent', async () => {
    const file = join(dir, 'resolved-upstreams.conf');
    await writeFile(file, '# This is /run/systemd/resolve/resolv.conf managed by man:systemd-resolved(8).\nnameserver 10.0.0.1\nnameserver 127.0.1.53\n');
    expect(await new ResolvedBackend(deps(fakeRunner().run), file).learnUpstreams()).toEqual(['10.0.0.1']);
  });
});

describe('NetworkManager backend (command construction)', () => {
  it('modifies only the running device, exclusive by negative priority, and reapplies the profile on restore', async () => {
    const { run, calls } = fakeRunner();
    const b = new NetworkManagerBackend(deps(run));
    await b.apply(CFG);
    await b.restore();
    expect(calls.map((c) => c.cmd)).toEqual([
      'nmcli device modify zcc0 ipv4.dns 127.0.1.53 ipv4.dns-search demo.internal,~apps.demo.internal,~intranet.demo.internal,~partner.example ipv4.dns-priority -1000',
      'nmcli device reapply zcc0',
    ]);
  });

  it('learns the other devices’ servers from terse nmcli output', async () => {
    const out = 'GENERAL.DEVICE:eth0\nIP4.DNS[1]:10.0.0.1\nIP6.DNS[1]:2001\\:db8\\:\\:53\nGENERAL.DEVICE:zcc0\nIP4.DNS[1]:127.0.1.53\nGENERAL.DEVICE:lo\n';
    expect(nmServersExcept(out, 'zcc0')).toEqual(['10.0.0.1', '2001:db8::53']);
    const { run } = fakeRunner({ 'nmcli -t': out });
    expect(await new NetworkManagerBackend(deps(run)).learnUpstreams()).toEqual(['10.0.0.1', '[2001:db8::53]:53']);
  });

  it('verifies that the device still has the agent as DNS server', async () => {
    const { run } = fakeRunner({ 'nmcli -g': '127.0.1.53\n' });
    const b = new NetworkManagerBackend(deps(run));
    await b.apply(CFG);
    expect(await b.verify()).toBe(true);
    const other = new NetworkManagerBackend(deps(fakeRunner({ 'nmcli -g': '10.0.0.1 | 10.0.0.2\n' }).run));
    await other.apply(CFG);
    expect(await other.verify()).toBe(false);
  });
});

describe('resolvconf / openresolv backend (command construction)', () => {
  it('Debian resolvconf: adds the lo.zcc record from stdin and deletes it', async () => {
    const { run, calls } = fakeRunner();
    const b = new ResolvconfBackend(deps(run), 'resolvconf');
    await b.apply(CFG);
    await b.restore();
    expect(calls).toEqual([
      { cmd: `resolvconf -a ${RECORD_NAME}`, input: 'nameserver 127.0.1.53\nsearch demo.internal\n' },
      { cmd: `resolvconf -d ${RECORD_NAME}` },
    ]);
  });

  it('openresolv: marks the record exclusive and deletes it forgivingly', async () => {
    const { run, calls } = fakeRunner();
    const b = new ResolvconfBackend(deps(run), 'openresolv');
    await b.apply(CFG);
    await b.restore();
    expect(calls.map((c) => c.cmd)).toEqual([`resolvconf -x -a ${RECORD_NAME}`, `resolvconf -f -d ${RECORD_NAME}`]);
  });

  it('learns upstreams from the other records (Debian directory, openresolv -l)', async () => {
    const records = join(dir, 'interface');
    await mkdir(records);
    await writeFile(join(records, 'eth0.dhclient'), 'nameserver 10.0.0.1\nsearch lan\n');
    await writeFile(join(records, RECORD_NAME), 'nameserver 127.0.1.53\n');
    expect(await new ResolvconfBackend(deps(fakeRunner().run), 'resolvconf', records).learnUpstreams()).toEqual(['10.0.0.1']);
    const listing = `# resolv.conf from ${RECORD_NAME}\nnameserver 127.0.1.53\n# resolv.conf from wlan0\nnameserver 192.168.1.1\n`;
    expect(recordsExcept(listing, RECORD_NAME).trim()).toBe('nameserver 192.168.1.1');
    const { run } = fakeRunner({ 'resolvconf -l': listing });
    expect(await new ResolvconfBackend(deps(run), 'openresolv').learnUpstreams()).toEqual(['192.168.1.1']);
  });

  it('verifies that the generated file names the agent first', async () => {
    const file = join(dir, 'rc-resolv.conf');
    const b = new ResolvconfBackend(deps(fakeRunner().run, { resolvConfPath: file }), 'resolvconf');
    await b.apply(CFG);
    await writeFile(file, 'nameserver 127.0.1.53\nnameserver 10.0.0.1\n');
    expect(await b.verify()).toBe(true);
    await writeFile(file, 'nameserver 10.0.0.1\nnameserver 127.0.1.53\n');
    expect(await b.verify()).toBe(false);
  });
});
