import { once } from 'node:events';
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigLoader, ManagedKeyError, type ConfigChange, type ConfigErrorInfo, type ConfigLoaderOptions } from '../../src/agent/config/loader.js';
import { defaultAgentConfig } from '../../src/agent/config/schema.js';
import { DR_PUBLIC_KEY_B64, FIXTURES, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let managedFile: string;
let userFile: string;
const loaders: ConfigLoader[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  managedFile = path.join(dir, 'managed.json');
  userFile = path.join(dir, 'user', 'config.json');
});

afterEach(async () => {
  for (const l of loaders.splice(0)) l.close();
  await cleanup();
});

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function loader(opts: Partial<ConfigLoaderOptions> = {}): ConfigLoader {
  const l = new ConfigLoader({ managed: { file: managedFile }, userFile, watch: false, pollIntervalMs: 0, ...opts });
  loaders.push(l);
  return l;
}

/** Resolves with the next event, or fails after the deadline (no fixed sleeps). */
function next<T>(l: ConfigLoader, event: 'change' | 'invalid', ms = 10_000): Promise<T> {
  return once(l, event, { signal: AbortSignal.timeout(ms) }).then(([v]) => v as T);
}

describe('precedence', () => {
  it('managed > user > defaults, per key path', async () => {
    await writeFile(managedFile, json({ dns: { domainValidation: true }, timeouts: { udpIdleSeconds: 30 } }));
    await writeFile(path.join(dir, 'u.json'), '');
    const l = loader();
    await l.start();
    await l.setUserValue('dns.searchDomains', ['corp.example']);
    await l.setUserValue('timeouts.tcpOpenIdleSeconds', 600);
    const { config, managedKeys, lastError } = l.state;
    expect(lastError).toBeUndefined();
    expect(config.dns).toEqual({ listen: '127.0.1.53:53', searchDomains: ['corp.example'], domainValidation: true, poolCidr: '100.64.0.0/10' });
    expect(config.timeouts).toEqual({ tcpHalfClosedIdleSeconds: 360, tcpOpenIdleSeconds: 600, udpIdleSeconds: 30, authWarningBeforeSeconds: 1_800 });
    expect(managedKeys).toEqual(['dns.domainValidation', 'timeouts.udpIdleSeconds']);
    expect(JSON.parse(await readFile(userFile, 'utf8'))).toEqual({ dns: { searchDomains: ['corp.example'] }, timeouts: { tcpOpenIdleSeconds: 600 } });
  });

  it('a user file value is overridden by the managed one and comes back when the administrator drops it', async () => {
    await writeFile(managedFile, json({ logging: { level: 'warn' } }));
    await writeFile(userFile.replace('user/config.json', 'user.json'), '');
    const l = loader({ userFile: path.join(dir, 'user.json') });
    await writeFile(path.join(dir, 'user.json'), json({ logging: { level: 'debug' } }));
    await l.start();
    expect(l.config.logging.level).toBe('warn');
    await writeFile(managedFile, json({}));
    await l.reload();
    expect(l.config.logging.level).toBe('debug');
  });

  it('a section may be completed across layers; a missing required key is blamed on the file that set the section', async () => {
    await writeFile(managedFile, json({ dr: { domain: 'dr.acme.example', publicKey: DR_PUBLIC_KEY_B64 } }));
    const l = loader();
    await l.start();
    await l.setUserValue('dr.pollIntervalSeconds', 600);
    expect(l.config.dr).toMatchObject({ domain: 'dr.acme.example', pollIntervalSeconds: 600, requireSigned: true });
    await writeFile(managedFile, json({}));
    await l.reload();
    expect(l.state.lastError?.message).toBe(
      `${userFile}: invalid configuration\n  dr.domain: required, expected string\n  dr.publicKey: required, expected string`,
    );
  });
});

describe('managed keys are locked', () => {
  it('setUserValue refuses a managed key, its section and anything inside it, saying it is managed', async () => {
    await writeFile(managedFile, json({ dns: { domainValidation: true }, tenants: [] }));
    const l = loader();
    await l.start();
    const cases: Array<[string, unknown, string]> = [
      ['dns.domainValidation', false, 'dns.domainValidation'],
      ['dns', { domainValidation: false }, 'dns.domainValidation'],
      ['tenants.0.enabled', false, 'tenants'],
    ];
    for (const [key, value, managedKey] of cases) {
      const err = await l.setUserValue(key, value).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ManagedKeyError);
      expect((err as Error).message).toBe(`${key}: cannot be changed, ${managedKey} is managed by ${managedFile}`);
    }
    expect(l.config.dns.domainValidation).toBe(true);
    await expect(readFile(userFile)).rejects.toThrow(/ENOENT/);
    // A neighbour in the same section is the user's to change.
    await l.setUserValue('dns.searchDomains', ['corp.example']);
    expect(l.config.dns.searchDomains).toEqual(['corp.example']);
  });

  it('refuses unknown keys and invalid values with the key path and the expectation, and writes nothing', async () => {
    const l = loader();
    await l.start();
    await expect(l.setUserValue('dns.searchDomain', ['x'])).rejects.toThrow('dns.searchDomain: unknown key');
    await expect(l.setUserValue('timeouts.udpIdleSeconds', '60')).rejects.toThrow(`${userFile}: invalid configuration\n  timeouts.udpIdleSeconds: expected number, got "60"`);
    await expect(l.setUserValue('tenants.0.forwardingProfile', 'sometimes')).rejects.toThrow(/tenants\.0\.forwardingProfile: Invalid option: expected one of "always"\|"untrusted-only"\|"never"/);
    await expect(readFile(userFile)).rejects.toThrow(/ENOENT/);
    expect(l.config).toEqual(defaultAgentConfig());
  });
});

describe('a broken managed file: the last good configuration stays in force', () => {
  const good = { dns: { searchDomains: ['corp.example'] }, trustedNetwork: { match: 'all', dnsServers: ['10.0.0.53'] } };
  const cases: Array<{ name: string; content: string; message: (f: string) => string | RegExp }> = [
    {
      name: 'broken JSON',
      content: '{ "dns": { "searchDomains": [ } }',
      message: (f) => new RegExp(`^${f.replace(/[/.]/g, '\\$&')}: invalid JSON: .* \\(line 1, column 31: expected a value\\)$`),
    },
    {
      name: 'unknown key',
      content: json({ dns: { searchDomain: ['corp.example'] } }),
      message: (f) => `${f}: invalid configuration\n  dns.searchDomain: unknown key (expected one of: listen, searchDomains, domainValidation, poolCidr)`,
    },
    {
      name: 'wrong type',
      content: json({ trustedNetwork: { match: 'all', dnsServers: '10.0.0.53' } }),
      message: (f) => `${f}: invalid configuration\n  trustedNetwork.dnsServers: expected array, got "10.0.0.53"`,
    },
    {
      name: 'invalid value',
      content: json({ dns: { poolCidr: '10.0.0.0/31' } }),
      message: (f) => `${f}: invalid configuration\n  dns.poolCidr: expected an IPv4 CIDR usable as the synthetic pool: network too small: the prefix must be /30 or shorter`,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: the error names the file, key path and expectation; the config does not change`, async () => {
      await writeFile(managedFile, json(good));
      const l = loader();
      await l.start();
      const before = structuredClone(l.config);
      expect(before.trustedNetwork.dnsServers).toEqual(['10.0.0.53']);
      const invalid = next<ConfigErrorInfo>(l, 'invalid');
      await writeFile(managedFile, c.content);
      await l.reload();
      const err = await invalid;
      expect(err.file).toBe(managedFile);
      const expected = c.message(managedFile);
      if (typeof expected === 'string') expect(err.message).toBe(expected);
      else expect(err.message).toMatch(expected);
      expect(Date.parse(err.at)).not.toBeNaN();
      expect(l.state.lastError).toEqual(err);
      expect(l.config).toEqual(before);
      // Still locked as before: the broken file must not unlock what the administrator set.
      await expect(l.setUserValue('trustedNetwork.dnsServers', [])).rejects.toThrow(/is managed by/);
      await expect(l.setUserValue('logging.level', 'debug')).rejects.toThrow(`logging.level: cannot be changed while ${managedFile} is invalid (using last good configuration)`);
      // Fixed again: error cleared, new content applied.
      await writeFile(managedFile, json({ ...good, logging: { level: 'warn' } }));
      const change = next<ConfigChange>(l, 'change');
      await l.reload();
      expect((await change).changedKeys).toEqual(['logging.level']);
      expect(l.state.lastError).toBeUndefined();
    });
  }

  it('a restart with a broken file keeps the last good configuration saved on disk', async () => {
    const lastGoodFile = path.join(dir, 'state', 'last-good.json');
    await writeFile(managedFile, json(good));
    const first = loader({ lastGoodFile });
    await first.start();
    first.close();
    await expect.poll(() => readFile(lastGoodFile, 'utf8').catch(() => ''), { timeout: 5_000 }).toContain('10.0.0.53');
    await writeFile(managedFile, '{');
    const second = loader({ lastGoodFile });
    const state = await second.start();
    expect(state.config.trustedNetwork.dnsServers).toEqual(['10.0.0.53']);
    expect(state.managedKeys).toEqual(['dns.searchDomains', 'trustedNetwork.match', 'trustedNetwork.dnsServers']);
    expect(state.lastError?.file).toBe(managedFile);
    // Without a saved copy: the defaults, and the error says so.
    const third = loader();
    expect((await third.start()).config).toEqual(defaultAgentConfig());
    expect(third.state.lastError?.message).toMatch(/invalid JSON/);
  });

  it('a broken user file also keeps the last good configuration', async () => {
    await writeFile(managedFile, json({}));
    const l = loader();
    await l.start();
    await l.setUserValue('ui.hideWindowOnLaunch', true);
    await writeFile(userFile, json({ ui: { hideWindowOnLaunch: 'yes' } }));
    await l.reload();
    expect(l.state.lastError?.message).toBe(`${userFile}: invalid configuration\n  ui.hideWindowOnLaunch: expected boolean, got "yes"`);
    expect(l.config.ui.hideWindowOnLaunch).toBe(true);
  });
});

describe('live changes', () => {
  it('a managed file written while running is picked up by the watcher', async () => {
    await writeFile(managedFile, json({ logging: { level: 'info' } }));
    const l = loader({ watch: true });
    await l.start();
    const change = next<ConfigChange>(l, 'change');
    await writeFile(managedFile, json({ logging: { level: 'error' }, dns: { domainValidation: true } }));
    const c = await change;
    expect(c.changedKeys).toEqual(['dns.domainValidation', 'logging.level']);
    expect(c.config.logging.level).toBe('error');
    expect(c.managedKeys).toEqual(['logging.level', 'dns.domainValidation']);
  });

  it('a file replaced by rename (how MDM agents write) and a file that appears later are picked up', async () => {
    const l = loader({ watch: true });
    await l.start();
    let change = next<ConfigChange>(l, 'change');
    await writeFile(`${managedFile}.new`, json({ ui: { hiddenMenuItems: ['quit'] } }));
    await rename(`${managedFile}.new`, managedFile);
    expect((await change).config.ui.hiddenMenuItems).toEqual(['quit']);
    const invalid = next<ConfigErrorInfo>(l, 'invalid');
    await writeFile(managedFile, json({ ui: { hiddenMenuItems: ['exit'] } }));
    expect((await invalid).message).toMatch(/ui\.hiddenMenuItems\.0: Invalid option: expected one of "open"\|"reauth"\|"exportDiagnostics"\|"quit"/);
    change = next<ConfigChange>(l, 'change');
    await copyFile(path.join(FIXTURES, 'com.zcc.agent.plist'), path.join(dir, 'ignored.plist'));
    await writeFile(managedFile, json({}));
    expect((await change).changedKeys).toEqual(['ui.hiddenMenuItems']);
  });

  it('without a watch, the periodic re-read picks a change up', async () => {
    const l = loader({ watch: false, pollIntervalMs: 50 });
    await l.start();
    const change = next<ConfigChange>(l, 'change');
    await writeFile(managedFile, json({ timeouts: { udpIdleSeconds: 90 } }));
    expect((await change).config.timeouts.udpIdleSeconds).toBe(90);
  });

  it('reads a macOS managed preferences plist as the managed source', async () => {
    const plistFile = path.join(dir, 'com.zcc.agent.plist');
    await copyFile(path.join(FIXTURES, 'com.zcc.agent.plist'), plistFile);
    const l = loader({ managed: { file: plistFile } });
    const { config, managedKeys } = await l.start();
    expect(config.tenants[0]?.forwardingProfile).toBe('untrusted-only');
    expect(managedKeys).toContain('dr.publicKey');
    await expect(l.setUserValue('tenants', [])).rejects.toThrow(`tenants: cannot be changed, tenants is managed by ${plistFile}`);
  });
});
