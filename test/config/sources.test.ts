import { readFileSync } from 'node:fs';
import path from 'node:path';
import { build, buildBinary, parse, type PlistValue } from 'plist';
import { describe, expect, it } from 'vitest';
import { parseRegFile, parseRegJson, registryToConfig } from '../../src/agent/config/registry.js';
import { defaultSourcePaths, detectFormat, parseSource } from '../../src/agent/config/sources.js';
import { validateLayer } from '../../src/agent/config/validate.js';
import { AgentConfig } from '../../src/agent/config/schema.js';
import { FIXTURE_LAYER, FIXTURES } from './helpers.js';

const fixture = (name: string) => path.join(FIXTURES, name);
const read = (name: string) => readFileSync(fixture(name));

describe('macOS managed preferences (plist)', () => {
  it('parses the XML fixture into the expected layer, <data> as base64', async () => {
    const layer = await parseSource(fixture('com.zcc.agent.plist'), read('com.zcc.agent.plist'));
    expect(layer).toEqual(FIXTURE_LAYER);
    expect(validateLayer(layer, 'x').deferred).toEqual([]);
  });

  it('parses a binary plist of the same content (what cfprefsd usually writes)', async () => {
    const value = parse(read('com.zcc.agent.plist').toString('utf8'));
    const binary = Buffer.from(buildBinary(value));
    expect(binary.subarray(0, 6).toString()).toBe('bplist');
    expect(detectFormat('/Library/Managed Preferences/com.zcc.agent', binary)).toBe('plist');
    expect(await parseSource('com.zcc.agent.plist', binary)).toEqual(FIXTURE_LAYER);
  });

  it('names the file when the plist is damaged or not a dictionary', async () => {
    await expect(parseSource('/x/p.plist', Buffer.from('<?xml version="1.0"?><plist><dict><key>a</key>'))).rejects.toThrow(/^\/x\/p\.plist: invalid property list/);
    const arrayPlist = Buffer.from(build(['a'] as PlistValue));
    await expect(parseSource('/x/p.plist', arrayPlist)).rejects.toThrow('/x/p.plist: invalid configuration\n  (root): expected an object of settings, got an array');
  });
});

describe('Windows policy registry', () => {
  it('parses the .reg export: sections, numbered list entries, DWORD booleans, MULTI_SZ lists, BINARY keys, other vendors ignored', async () => {
    const layer = await parseSource(fixture('zcc-policy.reg'), read('zcc-policy.reg'));
    expect(layer).toEqual(FIXTURE_LAYER);
  });

  it('reads the UTF-16LE encoding regedit writes', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(read('zcc-policy.reg').toString('utf8'), 'utf16le')]);
    expect(registryToConfig(parseRegFile(utf16, 'policy.reg'))).toEqual(FIXTURE_LAYER);
  });

  it('parses the JSON dump (typed and shorthand values) into the same layer', async () => {
    const file = fixture('zcc-policy.reg.json');
    expect(detectFormat(file, read('zcc-policy.reg.json'))).toBe('reg-json');
    expect(await parseSource(file, read('zcc-policy.reg.json'))).toEqual(FIXTURE_LAYER);
  });

  it('joins a MULTI_SZ at a text key (a PEM) and keeps a DWORD other than 0/1 at a boolean key for validation to reject', async () => {
    const root = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\zcc';
    const layer = registryToConfig(
      parseRegJson(
        {
          [`${root}\\tenants\\0\\cloud`]: { caPem: ['-----BEGIN CERTIFICATE-----', 'AAAA', '-----END CERTIFICATE-----'] },
          [`${root}\\dns`]: { domainValidation: 2 },
        },
        'dump.json',
      ),
    );
    expect(layer).toEqual({
      tenants: [{ cloud: { caPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' } }],
      dns: { domainValidation: 2 },
    });
    expect(() => validateLayer(layer, 'dump.json')).toThrow('dns.domainValidation: expected boolean, got 2');
  });

  it('reports malformed exports with file and line', async () => {
    const bad = (body: string) => Buffer.from(`Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\zcc\\dns]\r\n${body}\r\n`);
    expect(() => parseRegFile(bad('"listen"=dword:12'), 'p.reg')).toThrow(/^p\.reg: line 4: unsupported data/);
    expect(() => parseRegFile(bad('listen=1'), 'p.reg')).toThrow('p.reg: line 4: expected "name"=value');
    expect(() => parseRegFile(bad('"listen"=-'), 'p.reg')).toThrow('p.reg: line 4: value deletions are not settings');
    expect(() => parseRegFile(Buffer.from('hello'), 'p.reg')).toThrow(/^p\.reg: not a registry export/);
    expect(() => parseRegJson({ 'HKLM\\SOFTWARE\\Policies\\zcc': { a: { type: 'REG_NONE' } } }, 'd.json')).toThrow(/^d\.json: not a registry dump/);
  });

  it('an unknown value name is an unknown key', async () => {
    const layer = await parseSource('p.reg', Buffer.from('Windows Registry Editor Version 5.00\n[HKLM\\SOFTWARE\\Policies\\zcc\\timeouts]\n"udpIdle"=dword:0000003c\n'));
    expect(() => validateLayer(layer, 'p.reg')).toThrow(/^p\.reg: invalid configuration\n {2}timeouts\.udpIdle: unknown key \(expected one of: tcpHalfClosedIdleSeconds/);
  });
});

describe('source paths and formats', () => {
  it('has documented defaults per platform', async () => {
    expect(defaultSourcePaths('linux')).toEqual({
      managed: { file: '/etc/zcc/managed.json', format: 'json' },
      user: '/var/lib/zcc/config.json',
      lastGood: '/var/lib/zcc/config.last-good.json',
    });
    expect(defaultSourcePaths('darwin').managed).toEqual({ file: '/Library/Managed Preferences/com.zcc.agent.plist', format: 'plist' });
    // The live registry reader is not built: no managed source by default on Windows.
    expect(defaultSourcePaths('win32', { ProgramData: 'D:\\PD' })).toEqual({ user: 'D:\\PD\\zcc\\config.json', lastGood: 'D:\\PD\\zcc\\config.last-good.json' });
  });

  it('the fixtures are valid against the full schema once merged over defaults', async () => {
    const parsed = AgentConfig.parse(FIXTURE_LAYER);
    expect(parsed.tenants[0]?.enabled).toBe(true);
    expect(parsed.dr?.requireSigned).toBe(true);
  });
});
