import type { IncomingHttpHeaders } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/protocol/errors.js';
import {
  isResetReason,
  openHeaders,
  parseOpen,
  PROTO_HEADER,
  reasonFromCode,
  RESET_REASONS,
  TAG_HEADER,
  type MicrotunnelOpen,
  type ResetReason,
} from '../../src/protocol/microtunnel-open.js';

/** Headers as the server sees them for a valid open, with `patch` applied (undefined deletes). */
function headers(patch: Record<string, string | string[] | undefined> = {}): IncomingHttpHeaders {
  const h: Record<string, string | string[] | undefined> = {
    ':method': 'CONNECT',
    ':authority': 'intranet.demo.internal:443',
    [TAG_HEADER]: '42',
    [PROTO_HEADER]: 'tcp',
    ...patch,
  };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  return h as IncomingHttpHeaders;
}

function badOpen(h: IncomingHttpHeaders): ProtocolError {
  try {
    parseOpen(h, 'test stream');
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('bad-open');
    expect((err as ProtocolError).where).toBe('test stream');
    return err as ProtocolError;
  }
  throw new Error(`accepted ${JSON.stringify(h)}`);
}

describe('parseOpen accepts', () => {
  const valid: Array<[string, Record<string, string | undefined>, MicrotunnelOpen]> = [
    ['a plain tcp open', {}, { tag: 42, proto: 'tcp', host: 'intranet.demo.internal', port: 443 }],
    ['udp', { [PROTO_HEADER]: 'udp' }, { tag: 42, proto: 'udp', host: 'intranet.demo.internal', port: 443 }],
    ['tag 1 (smallest)', { [TAG_HEADER]: '1' }, { tag: 1, proto: 'tcp', host: 'intranet.demo.internal', port: 443 }],
    ['tag 2^32-1 (largest)', { [TAG_HEADER]: '4294967295' }, { tag: 0xffffffff, proto: 'tcp', host: 'intranet.demo.internal', port: 443 }],
    ['port 1', { ':authority': 'a.b:1' }, { tag: 42, proto: 'tcp', host: 'a.b', port: 1 }],
    ['port 65535', { ':authority': 'a.b:65535' }, { tag: 42, proto: 'tcp', host: 'a.b', port: 65535 }],
    ['a single-label host', { ':authority': 'intranet:80' }, { tag: 42, proto: 'tcp', host: 'intranet', port: 80 }],
    ['an underscore label', { ':authority': '_ldap._tcp.demo.internal:389' }, { tag: 42, proto: 'tcp', host: '_ldap._tcp.demo.internal', port: 389 }],
    ['a 63-character label', { ':authority': `${'a'.repeat(63)}.x:80` }, { tag: 42, proto: 'tcp', host: `${'a'.repeat(63)}.x`, port: 80 }],
  ];
  it.each(valid)('%s', (_name, patch, expected) => {
    expect(parseOpen(headers(patch), 'test')).toEqual(expected);
  });

  it('normalises an upper-case host to lower case', () => {
    expect(parseOpen(headers({ ':authority': 'InTraNet.DEMO.Internal:8443' }), 'test')).toEqual({
      tag: 42,
      proto: 'tcp',
      host: 'intranet.demo.internal',
      port: 8443,
    });
  });

  it('round-trips what openHeaders produces', () => {
    const open: MicrotunnelOpen = { tag: 0xfedcba98, proto: 'udp', host: 'dns.demo.internal', port: 53 };
    const out = openHeaders(open);
    expect(out[':method']).toBe('CONNECT');
    expect(out[TAG_HEADER]).toBe(String(0xfedcba98));
    expect(parseOpen(out as IncomingHttpHeaders, 'test')).toEqual(open);
  });
});

describe('parseOpen rejects each invalid field as bad-open', () => {
  const invalid: Array<[string, Record<string, string | string[] | undefined>, RegExp]> = [
    // method
    ['GET instead of CONNECT', { ':method': 'GET' }, /method/],
    ['lower-case connect', { ':method': 'connect' }, /method/],
    ['no method', { ':method': undefined }, /method/],
    // authority
    ['no authority', { ':authority': undefined }, /authority/],
    ['authority without port', { ':authority': 'intranet.demo.internal' }, /authority/],
    ['authority with only a port', { ':authority': ':443' }, /authority/],
    ['empty authority', { ':authority': '' }, /authority/],
    ['repeated authority', { ':authority': ['a.b:1', 'c.d:2'] }, /authority/],
    ['port 0', { ':authority': 'a.b:0' }, /port/],
    ['port 65536', { ':authority': 'a.b:65536' }, /port/],
    ['empty port', { ':authority': 'a.b:' }, /port/],
    ['non-numeric port', { ':authority': 'a.b:https' }, /port/],
    ['fractional port', { ':authority': 'a.b:80.5' }, /port/],
    ['negative port', { ':authority': 'a.b:-1' }, /port/],
    ['IPv6 literal', { ':authority': '[::1]:443' }, /host/],
    ['empty label', { ':authority': 'a..b:80' }, /host/],
    ['leading dot', { ':authority': '.a.b:80' }, /host/],
    ['trailing dot', { ':authority': 'a.b.:80' }, /host/],
    ['label starting with a hyphen', { ':authority': '-a.b:80' }, /host/],
    ['label ending with a hyphen', { ':authority': 'a-.b:80' }, /host/],
    ['64-character label', { ':authority': `${'a'.repeat(64)}.x:80` }, /host/],
    ['host over 253 characters', { ':authority': `${Array.from({ length: 64 }, () => 'abc').join('.')}:80` }, /host/],
    ['space in host', { ':authority': 'a b:80' }, /host/],
    ['userinfo', { ':authority': 'user@a.b:80' }, /host/],
    ['non-ASCII host', { ':authority': 'bücher.example:80' }, /host/],
    // tag
    ['no tag', { [TAG_HEADER]: undefined }, /tag/],
    ['tag 0', { [TAG_HEADER]: '0' }, /tag/],
    ['tag 2^32', { [TAG_HEADER]: '4294967296' }, /tag/],
    ['tag with 11 digits', { [TAG_HEADER]: '00000000001' }, /tag/],
    ['negative tag', { [TAG_HEADER]: '-1' }, /tag/],
    ['hex tag', { [TAG_HEADER]: '0x10' }, /tag/],
    ['tag with exponent', { [TAG_HEADER]: '1e3' }, /tag/],
    ['tag with spaces', { [TAG_HEADER]: ' 7' }, /tag/],
    ['empty tag', { [TAG_HEADER]: '' }, /tag/],
    ['repeated tag', { [TAG_HEADER]: ['1', '2'] }, /tag/],
    // proto
    ['no proto', { [PROTO_HEADER]: undefined }, /proto/],
    ['proto sctp', { [PROTO_HEADER]: 'sctp' }, /proto/],
    ['upper-case proto', { [PROTO_HEADER]: 'TCP' }, /proto/],
    ['repeated proto', { [PROTO_HEADER]: ['tcp', 'tcp'] }, /proto/],
  ];
  it.each(invalid)('%s', (_name, patch, message) => {
    expect(badOpen(headers(patch)).message).toMatch(message);
  });
});

describe('reset reasons', () => {
  const reasons = Object.keys(RESET_REASONS) as ResetReason[];

  it('maps every reason to a distinct code above the RFC 9113 range and back', () => {
    const codes = reasons.map((r) => RESET_REASONS[r].code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const reason of reasons) {
      const { code, status } = RESET_REASONS[reason];
      expect(code).toBeGreaterThan(0xd); // HTTP_1_1_REQUIRED is the last HTTP/2 code
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
      expect(reasonFromCode(code)).toBe(reason);
      expect(isResetReason(reason)).toBe(true);
    }
  });

  it.each([
    ['undefined', undefined],
    ['NO_ERROR', 0],
    ['PROTOCOL_ERROR', 1],
    ['CANCEL', 8],
    ['HTTP_1_1_REQUIRED', 0xd],
    ['just below our range', 0x100],
    ['just above our range', 0x10f],
    ['huge', 0xffffffff],
    ['negative', -1],
    ['NaN', NaN],
  ])('maps an unknown code (%s) to peer-reset', (_name, code) => {
    expect(reasonFromCode(code)).toBe('peer-reset');
  });

  it('recognises only our reasons by name', () => {
    for (const v of ['', 'toString', 'constructor', '__proto__', 'hasOwnProperty', 'DENIED', 'denied ', 42, null, undefined, {}]) {
      expect(isResetReason(v)).toBe(false);
    }
  });
});
