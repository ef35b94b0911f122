import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateConfigDocs } from '../../src/agent/config/docs.js';
import { findJsonError } from '../../src/agent/config/json-position.js';
import { AgentConfig, defaultAgentConfig } from '../../src/agent/config/schema.js';
import { parseSource } from '../../src/agent/config/sources.js';
import { changedPaths, leafPaths, mergeLayers, validateLayer } from '../../src/agent/config/validate.js';
import { DR_PUBLIC_KEY_B64 } from './helpers.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const tenant = (over: Record<string, unknown> = {}) => ({
  id: 'acme',
  name: 'Acme',
  cloud: { edge: 'edge.acme.example:443', enroll: '10.0.0.1:8443', serverName: 'edge.acme.example', caFile: '/etc/zcc/acme.pem' },
  ...over,
});

describe('the schema', () => {
  it('has the documented defaults', () => {
    const d = defaultAgentConfig();
    expect(d.tenants).toEqual([]);
    expect(d.dns).toEqual({ listen: '127.0.1.53:53', searchDomains: [], domainValidation: false, poolCidr: '100.64.0.0/10' });
    expect(d.dr).toBeUndefined();
    expect(d.trustedNetwork).toEqual({ match: 'any' });
    expect(d.timeouts).toEqual({ tcpHalfClosedIdleSeconds: 360, tcpOpenIdleSeconds: 0, udpIdleSeconds: 60, authWarningBeforeSeconds: 1_800 });
    const t = AgentConfig.parse({ tenants: [tenant()], dr: { domain: 'dr.acme.example', publicKey: DR_PUBLIC_KEY_B64 } });
    expect(t.tenants[0]).toMatchObject({ forwardingProfile: 'always', enabled: true });
    expect(t.dr).toMatchObject({ pollIntervalSeconds: 240, requireSigned: true, maxAssertionAgeHours: 168 });
  });

  it('accepts a DR key as PEM or base64 and rejects anything else', () => {
    const pem = `-----BEGIN PUBLIC KEY-----\n${DR_PUBLIC_KEY_B64}\n-----END PUBLIC KEY-----\n`;
    expect(AgentConfig.safeParse({ dr: { domain: 'dr.example', publicKey: pem } }).success).toBe(true);
    expect(() => validateLayer({ dr: { domain: 'dr.example', publicKey: 'bm90IGEga2V5' } }, 'f')).toThrow('f: invalid configuration\n  dr.publicKey: expected a public key: PEM or base64 of DER SPKI');
  });

  it.each<[string, unknown, string]>([
    ['caPem and caFile together', { tenants: [tenant({ cloud: { ...tenant().cloud, caPem: '-----BEGIN CERTIFICATE-----' } })] }, 'tenants.0.cloud.caPem: exactly one of caPem and caFile is required'],
    ['duplicate tenant ids', { tenants: [tenant(), tenant()] }, 'tenants: tenant ids must be unique'],
    ['edge without a port', { tenants: [tenant({ cloud: { ...tenant().cloud, edge: 'edge.acme.example' } })] }, 'tenants.0.cloud.edge: expected host:port ([ipv6]:port for IPv6)'],
    ['listen on a name', { dns: { listen: 'localhost:53' } }, 'dns.listen: expected ip:port ([ipv6]:port for IPv6)'],
    ['a bad search domain', { dns: { searchDomains: ['bad..name'] } }, 'dns.searchDomains.0: expected a DNS name'],
    ['a bad network range', { trustedNetwork: { networkRange: '10.0.0.0/33' } }, 'trustedNetwork.networkRange: expected a CIDR such as 10.0.0.0/8 or fd00::/8'],
    ['a poll faster than 30 s', { dr: { pollIntervalSeconds: 5 } }, 'dr.pollIntervalSeconds: Too small: expected number to be >=30'],
    ['a negative timeout', { timeouts: { udpIdleSeconds: -1 } }, 'timeouts.udpIdleSeconds: Too small: expected number to be >=0'],
    ['an unknown section', { proxy: {} }, 'proxy: unknown key (expected one of: tenants, dns, dr, trustedNetwork, timeouts, logging, ui, localApi)'],
    ['a list where a section goes', { ui: [] }, 'ui: expected object, got an array'],
  ])('rejects %s with the key path', (_name, layer, line) => {
    expect(() => validateLayer(layer, '/etc/zcc/managed.json')).toThrow(`/etc/zcc/managed.json: invalid configuration\n  ${line}`);
  });

  it('accepts IPv6 forms and both criteria families', () => {
    const parsed = AgentConfig.parse({
      dns: { listen: '[::1]:5353' },
      trustedNetwork: { match: 'all', dnsServers: ['fd00::53', '10.0.0.53'], networkRange: 'fd00::/8', hostname: { name: 'probe.corp.example', expectedIp: '10.1.1.1' } },
    });
    expect(parsed.trustedNetwork.match).toBe('all');
  });
});

describe('layers', () => {
  it('merges per key path, lists whole', () => {
    const merged = mergeLayers([{ dns: { searchDomains: ['a.example', 'b.example'], listen: '127.0.0.1:53' } }, { dns: { searchDomains: ['c.example'] } }, undefined]);
    expect(merged).toEqual({ dns: { searchDomains: ['c.example'], listen: '127.0.0.1:53' } });
    expect(leafPaths({ dns: { searchDomains: [], domainValidation: true }, tenants: [tenant()] })).toEqual(['dns.searchDomains', 'dns.domainValidation', 'tenants']);
    expect(changedPaths(defaultAgentConfig(), AgentConfig.parse({ dns: { domainValidation: true }, dr: { domain: 'x.example', publicKey: DR_PUBLIC_KEY_B64 } }))).toEqual([
      'dns.domainValidation',
      'dr.domain',
      'dr.maxAssertionAgeHours',
      'dr.pollIntervalSeconds',
      'dr.psePort',
      'dr.publicKey',
      'dr.requireSigned',
      'dr.testGroup',
    ]);
  });

  it('locates JSON syntax errors by line and column', async () => {
    expect(findJsonError('{\n  "a": 1,\n  "b": [1, 2,]\n}')).toEqual({ line: 3, column: 14, expected: 'a value' });
    expect(findJsonError('{"a": 1 "b": 2}')).toEqual({ line: 1, column: 9, expected: '"," or "}"' });
    expect(findJsonError('{"a": "x\n"}')).toEqual({ line: 1, column: 9, expected: 'the closing quote' });
    expect(findJsonError('{} x')).toEqual({ line: 1, column: 4, expected: 'the end of the file' });
    expect(findJsonError('{"a": [true, null, -1.5e3, "\\u00e9"]}')).toBeUndefined();
    await expect(parseSource('/etc/zcc/managed.json', Buffer.from('{\n  "dns": {\n    "listen": "127.0.0.1:53",\n  }\n}'))).rejects.toThrow(
      /^\/etc\/zcc\/managed\.json: invalid JSON: .* \(line 4, column 3: expected a string\)$/,
    );
  });
});

describe('docs/configuration.md', () => {
  it('is the generated output of the schema (regenerate: npx tsx scripts/gen-config-docs.ts)', () => {
    const committed = readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
    expect(committed).toBe(generateConfigDocs());
  });

  it('documents every key with its default', () => {
    const doc = generateConfigDocs();
    expect(doc).toContain('| `tenants[].forwardingProfile` | "always" \\| "untrusted-only" \\| "never" | `"always"` |');
    expect(doc).toContain('| `dns.poolCidr` | IPv4 CIDR | `"100.64.0.0/10"` |');
    expect(doc).toContain('| `dr.pollIntervalSeconds` | seconds | `240` |');
    expect(doc).toContain('| `timeouts.tcpOpenIdleSeconds` | seconds | `0` |');
    expect(doc).toContain('The live registry reader is described, not built');
  });
});
