import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DR_BODIES, DR_FORWARDING, DR_KINDS, decideDrMode, encodeDrRecord, formatDrTime, toTxtStrings, type DrMode, type DrRecord } from '../protocol/dr-record.js';

/**
 * `zcc dr`: the DR tool (seed 003). Generates the signing key pair, pre-generates TXT records
 * to be stored securely until needed, and checks records against the public key. Only the
 * public key is configured on agents, PSEs and connectors.
 */
const USAGE = `usage: zcc dr <keygen|record|verify> [options]
  keygen  --out DIR                       writes DIR/dr.key.pem (0600) and DIR/dr.pub.pem
  record  --mode on|test|off --key PRIV    prints the TXT record(s) for the DR domain
          [--unsigned] (instead of --key) [--kind zpa|zia|all] [--forwarding fo|fc|wf]
          [--valid-hours N] (default 168) [--parts N] [--domain NAME]
          [--format all|zone|dnsmasq|raw] (raw: one record per line)
  verify  --pub PUB "<txt>"...             checks records (one argument per TXT record);
          [--unsigned] (instead of --pub)  exit 0 if valid, 1 if not
`;

export async function drCommand(argv: string[]): Promise<void> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      out: { type: 'string' },
      mode: { type: 'string' },
      key: { type: 'string' },
      pub: { type: 'string' },
      unsigned: { type: 'boolean' },
      kind: { type: 'string', default: 'zpa' },
      forwarding: { type: 'string', default: 'fo' },
      'valid-hours': { type: 'string', default: '168' },
      parts: { type: 'string' },
      domain: { type: 'string', default: 'DR_DOMAIN' },
      format: { type: 'string', default: 'all' },
    },
    allowPositionals: true,
  });
  switch (action) {
    case 'keygen':
      return keygen(required(values.out, '--out DIR'));
    case 'record': {
      if (!values.key === !values.unsigned) throw new Error('zcc dr record: give --key PRIV, or --unsigned for a DR domain configured without signing');
      const hours = Number(values['valid-hours']);
      if (!(hours > 0)) throw new Error(`zcc dr record: --valid-hours must be a positive number, got ${values['valid-hours']}`);
      const t = new Date(Math.floor(Date.now() / 1000) * 1000);
      const record: DrRecord = {
        v: '1',
        b: pick('--mode', required(values.mode, '--mode on|test|off'), DR_BODIES),
        k: pick('--kind', values.kind, DR_KINDS),
        m: pick('--forwarding', values.forwarding, DR_FORWARDING),
        t,
        x: new Date(t.getTime() + Math.round(hours * 3600) * 1000),
      };
      const privateKey = values.key ? createPrivateKey(await readFile(values.key, 'utf8')) : undefined;
      const parts = values.parts === undefined ? undefined : Number(values.parts);
      print(encodeDrRecord(record, { privateKey, parts }), values.domain, values.format);
      return;
    }
    case 'verify': {
      if (!values.pub === !values.unsigned) throw new Error('zcc dr verify: give --pub PUB, or --unsigned');
      if (positionals.length === 0) throw new Error('zcc dr verify: give the TXT record(s) to check as arguments');
      const publicKey = values.pub ? createPublicKey(await readFile(values.pub, 'utf8')) : undefined;
      // Each argument is one TXT record; a record given in zone-file form ("a" "b") is joined.
      const txt = positionals.map((p) => [unquote(p)]);
      const d = decideDrMode({ kind: 'records', txt }, { publicKey, now: Date.now() });
      for (const w of d.warnings) console.log(`INVALID ${w}`);
      if (!d.record) {
        if (d.warnings.length === 0) console.log('INVALID no DR record (no argument starts with "v=")');
        process.exitCode = 1;
        return;
      }
      const r = d.record;
      console.log(`VALID ${publicKey ? 'signed' : 'unsigned'} b=${r.b} k=${r.k} m=${r.m} t=${formatDrTime(r.t)} x=${formatDrTime(r.x)} → ZPA mode ${d.mode as DrMode}`);
      if (d.warnings.length) process.exitCode = 1;
      return;
    }
    default:
      process.stderr.write(USAGE);
      process.exitCode = action ? 2 : 0;
  }
}

async function keygen(dir: string): Promise<void> {
  const keyFile = join(dir, 'dr.key.pem');
  const pubFile = join(dir, 'dr.pub.pem');
  // Overwriting would orphan every record pre-generated with the old key.
  if (existsSync(keyFile)) throw new Error(`zcc dr keygen: ${keyFile} exists; refusing to replace a DR signing key`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  await writeFile(pubFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  console.log(`private key ${keyFile} (0600: store it offline, with the pre-generated records)`);
  console.log(`public key  ${pubFile} (configure it on agents, private service edges and connectors)`);
}

/** Prints records for a BIND zone file and as dnsmasq options (each string ≤ 255 bytes). */
function print(records: string[], domain: string, format: string): void {
  const fqdn = domain.endsWith('.') ? domain : `${domain}.`;
  const zone = records.map((r) => `${fqdn} 300 IN TXT ${toTxtStrings(r).map((s) => `"${s}"`).join(' ')}`);
  const dnsmasq = records.map((r) => `--txt-record=${domain.replace(/\.$/, '')},${toTxtStrings(r).map((s) => `"${s}"`).join(',')}`);
  if (format === 'raw') return records.forEach((r) => console.log(r));
  if (format === 'zone') return zone.forEach((l) => console.log(l));
  if (format === 'dnsmasq') return dnsmasq.forEach((l) => console.log(l));
  if (format !== 'all') throw new Error(`zcc dr record: --format must be all, zone, dnsmasq or raw, got ${format}`);
  console.log('; zone file (replace any previous DR TXT records of the domain):');
  zone.forEach((l) => console.log(l));
  console.log('; dnsmasq options (restart dnsmasq to load them):');
  dnsmasq.forEach((l) => console.log(l));
}

function unquote(arg: string): string {
  const strings = [...arg.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
  return strings.length && /^\s*(".*"\s*)+$/.test(arg) ? strings.join('') : arg;
}

function required(v: string | undefined, what: string): string {
  if (!v) throw new Error(`zcc dr: ${what} is required\n${USAGE}`);
  return v;
}

function pick<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`zcc dr: ${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}
