import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED_KEYS } from '../../src/common/log.js';
import { REDACTED, redactSecrets } from '../../src/common/redact.js';

const SECRETS = new Set<string>(REDACTED_KEYS);

function capture(): { lines: () => Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const raw: string[] = [];
  const log = createLogger({ name: 'redact-test', level: 'trace', destination: { write: (s: string) => void raw.push(s) } });
  return { log, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('secret redaction in log lines', () => {
  it('replaces secrets at the top level and two levels down, in objects and arrays; deeper keys are out of scope', () => {
    const { log, lines } = capture();
    log.info({ a: 1, token: 's0', nested: { password: 's1', ok: 2, deep: { key: 's2', deeper: { secret: 'kept' } } }, list: [{ cookie: 's3' }] }, 'hello');
    const [line] = lines();
    expect(line).toMatchObject({
      a: 1,
      token: REDACTED,
      nested: { password: REDACTED, ok: 2, deep: { key: REDACTED, deeper: { secret: 'kept' } } },
      list: [{ cookie: REDACTED }],
      msg: 'hello',
    });
  });

  it('never modifies the caller’s objects', () => {
    const { log } = capture();
    const cfg = { enrollmentToken: 'T', inner: { privateKey: 'K' } };
    log.warn({ cfg }, 'config');
    expect(cfg).toEqual({ enrollmentToken: 'T', inner: { privateKey: 'K' } });
  });

  it('redacts secrets an error carries, and the error still serialises as one', () => {
    const { log, lines } = capture();
    const err = Object.assign(new Error('upstream refused'), { code: 'EAUTH', token: 'tok-123' });
    log.error({ err }, 'call failed');
    const [line] = lines();
    expect(line?.err).toMatchObject({ type: 'Error', message: 'upstream refused', code: 'EAUTH', token: REDACTED });
    expect(String((line?.err as { stack?: string }).stack)).toContain('upstream refused');
    expect(err.token).toBe('tok-123');
  });

  it('redacts child bindings, at every generation', () => {
    const { log, lines } = capture();
    log.child({ provisioningKey: 'P' }).child({ nested: { authorization: 'Bearer x' } }).info({ ok: true }, 'child');
    const [line] = lines();
    expect(line).toMatchObject({ provisioningKey: REDACTED, nested: { authorization: REDACTED }, ok: true });
    expect(JSON.stringify(line)).not.toMatch(/Bearer|"P"/);
  });

  it('hands back the same object when there is nothing to hide (no copy on the hot path)', () => {
    const fields = { agentTag: 1, target: 'a.example:80/tcp', list: [1, { x: 2 }], buf: Buffer.from('token') };
    expect(redactSecrets(fields, SECRETS)).toBe(fields);
  });

  it('no secret value placed anywhere within two levels survives serialisation (property)', () => {
    const secretValue = fc.string({ minLength: 8, maxLength: 16 }).map((s) => `SECRET-${s}`);
    const plain = fc.dictionary(fc.constantFrom('a', 'b', 'name', 'port', 'c'), fc.oneof(fc.integer(), fc.constantFrom('x', 'y')), { maxKeys: 4 });
    const holder = fc.tuple(fc.constantFrom(...REDACTED_KEYS), secretValue, plain).map(([k, v, p]) => ({ ...p, [k]: v }));
    const depth2 = fc.tuple(holder, plain).map(([h, p]) => ({ ...p, inner: { ...p, below: h } }));
    const depth1 = fc.tuple(holder, plain).map(([h, p]) => ({ ...p, inner: h }));
    const inArray = fc.tuple(holder, plain).map(([h, p]) => ({ ...p, list: [p, h] }));
    fc.assert(
      fc.property(fc.oneof(holder, depth1, depth2, inArray), (obj) => {
        const { log, lines } = capture();
        log.info(obj, 'line');
        expect(JSON.stringify(lines())).not.toContain('SECRET-');
      }),
      { numRuns: 300 },
    );
  });
});
