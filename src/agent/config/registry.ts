/**
 * Windows policy registry (HKLM\SOFTWARE\Policies\zcc) as a configuration layer, read from an
 * exported `.reg` file or a JSON dump. The live registry reader is described in
 * docs/configuration.md, not built: both forms here produce the same key/value tree, so a live
 * reader only has to fill that tree.
 *
 * Layout: a subkey is a section (`...\zcc\dns`), numbered subkeys are list entries
 * (`...\zcc\tenants\0`), a value is a setting. Registry types carry no booleans, so the
 * schema decides: a DWORD at a boolean key is false/true, a MULTI_SZ at a string key is its
 * lines joined (a PEM), BINARY at a string key is base64 (a DER public key).
 */
import { z } from 'zod';
import { AgentConfig } from './schema.js';
import { schemaAt, type KeyPath } from './schema-walk.js';
import { ConfigFileError, isPlainObject, type Plain } from './validate.js';

export const POLICY_ROOT = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\zcc';

export type RegValue =
  | { type: 'REG_SZ' | 'REG_EXPAND_SZ'; value: string }
  | { type: 'REG_MULTI_SZ'; value: string[] }
  | { type: 'REG_DWORD' | 'REG_QWORD'; value: number }
  | { type: 'REG_BINARY'; value: Uint8Array };

/** Key path below the policy root ('' for the root itself) → value name → value. */
export type RegistryTree = Map<string, Map<string, RegValue>>;

/** Path below POLICY_ROOT, or undefined for keys elsewhere (other vendors in a Policies export). */
function relativeKey(key: string): string | undefined {
  const norm = key.replace(/^HKLM\\/i, 'HKEY_LOCAL_MACHINE\\').replace(/\\+$/, '');
  const lower = norm.toLowerCase();
  const root = POLICY_ROOT.toLowerCase();
  if (lower === root) return '';
  return lower.startsWith(`${root}\\`) ? norm.slice(root.length + 1) : undefined;
}

function decodeText(buf: Buffer): string {
  if (buf[0] === 0xff && buf[1] === 0xfe) return buf.subarray(2).toString('utf16le');
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return buf.subarray(3).toString('utf8');
  return buf.toString('utf8');
}

function hexBytes(text: string): Buffer {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (!parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new Error('bad hex data');
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function parseRegData(data: string): RegValue {
  if (data.startsWith('"')) {
    const m = /^"((?:[^"\\]|\\.)*)"$/.exec(data);
    if (!m) throw new Error('unterminated string');
    return { type: 'REG_SZ', value: (m[1] as string).replace(/\\(.)/g, '$1') };
  }
  const dword = /^dword:([0-9a-fA-F]{8})$/.exec(data);
  if (dword) return { type: 'REG_DWORD', value: parseInt(dword[1] as string, 16) };
  const hex = /^hex(?:\(([0-9a-fA-F]+)\))?:(.*)$/s.exec(data);
  if (!hex) throw new Error(`unsupported data ${JSON.stringify(data.slice(0, 20))}`);
  const bytes = hexBytes(hex[2] as string);
  switch ((hex[1] ?? '3').toLowerCase()) {
    case '1':
    case '2': // REG_SZ / REG_EXPAND_SZ written as hex: UTF-16LE, NUL-terminated
      return { type: hex[1] === '1' ? 'REG_SZ' : 'REG_EXPAND_SZ', value: bytes.toString('utf16le').replace(/\0+$/, '') };
    case '7':
      return { type: 'REG_MULTI_SZ', value: bytes.toString('utf16le').replace(/\0+$/, '').split('\0').filter((s) => s !== '') };
    case 'b': {
      if (bytes.length !== 8) throw new Error('QWORD needs 8 bytes');
      const n = bytes.readBigUInt64LE();
      if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('QWORD too large');
      return { type: 'REG_QWORD', value: Number(n) };
    }
    case '3':
      return { type: 'REG_BINARY', value: new Uint8Array(bytes) };
    default:
      throw new Error(`unsupported registry type hex(${hex[1]})`);
  }
}

/** Parses a regedit export (version 5 UTF-16 or REGEDIT4 text). */
export function parseRegFile(content: Buffer, file: string): RegistryTree {
  const text = decodeText(content).replace(/\r\n?/g, '\n');
  // Long hex values continue on the next line after a trailing backslash.
  const lines = text.replace(/\\\n[ \t]*/g, '').split('\n');
  const header = lines[0]?.trim();
  if (header !== 'Windows Registry Editor Version 5.00' && header !== 'REGEDIT4') {
    throw new ConfigFileError(file, `${file}: not a registry export (expected "Windows Registry Editor Version 5.00" on line 1)`);
  }
  const tree: RegistryTree = new Map();
  let current: Map<string, RegValue> | undefined;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (i === 0 || line === '' || line.startsWith(';')) return;
    const fail = (why: string): never => {
      throw new ConfigFileError(file, `${file}: line ${i + 1}: ${why}`);
    };
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) fail('expected [KEY]');
      if (line.startsWith('[-')) fail('key deletions are not settings; export the policy key instead');
      const rel = relativeKey(line.slice(1, -1));
      current = rel === undefined ? undefined : (tree.get(rel) ?? new Map<string, RegValue>());
      if (rel !== undefined && current) tree.set(rel, current);
      return;
    }
    const m = /^"((?:[^"\\]|\\.)*)"\s*=\s*(.*)$/s.exec(line) ?? (line.startsWith('@=') ? fail('default values (@) are not settings') : null);
    if (!m) return fail('expected "name"=value');
    if (!current) return; // a value of a key outside the policy root
    if (m[2] === '-') fail('value deletions are not settings');
    try {
      current.set((m[1] as string).replace(/\\(.)/g, '$1'), parseRegData(m[2] as string));
    } catch (e) {
      fail((e as Error).message);
    }
  });
  return tree;
}

const JsonRegValue = z.union([
  z.strictObject({ type: z.enum(['REG_SZ', 'REG_EXPAND_SZ']), value: z.string() }),
  z.strictObject({ type: z.literal('REG_MULTI_SZ'), value: z.array(z.string()) }),
  z.strictObject({ type: z.enum(['REG_DWORD', 'REG_QWORD']), value: z.number().int().min(0) }),
  z.strictObject({ type: z.literal('REG_BINARY'), value: z.string().describe('base64') }),
  // Shorthand a hand-written dump may use: the type follows from the JSON type.
  z.string(),
  z.number().int().min(0),
  z.array(z.string()),
]);
const JsonRegDump = z.record(z.string(), z.record(z.string(), JsonRegValue));

/** Parses `{ "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\zcc\\dns": { "name": {type, value} } }`. */
export function parseRegJson(raw: unknown, file: string): RegistryTree {
  const parsed = JsonRegDump.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ConfigFileError(file, `${file}: not a registry dump: ${i ? `${i.path.join('.') || '(root)'}: ${i.message}` : 'invalid'}`);
  }
  const tree: RegistryTree = new Map();
  for (const [key, values] of Object.entries(parsed.data)) {
    const rel = relativeKey(key);
    if (rel === undefined) continue;
    const map = tree.get(rel) ?? new Map<string, RegValue>();
    tree.set(rel, map);
    for (const [name, v] of Object.entries(values)) {
      map.set(
        name,
        typeof v === 'string'
          ? { type: 'REG_SZ', value: v }
          : typeof v === 'number'
            ? { type: 'REG_DWORD', value: v }
            : Array.isArray(v)
              ? { type: 'REG_MULTI_SZ', value: v }
              : v.type === 'REG_BINARY'
                ? { type: 'REG_BINARY', value: new Uint8Array(Buffer.from(v.value, 'base64')) }
                : v,
      );
    }
  }
  return tree;
}

/** The schema's spelling of a registry name (registry names are case-insensitive). */
function schemaKey(path: KeyPath, name: string): string {
  const s = schemaAt(AgentConfig, path);
  if (!(s instanceof z.ZodObject)) return name;
  return Object.keys(s.shape).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
}

function coerce(path: KeyPath, v: RegValue): unknown {
  const s = schemaAt(AgentConfig, path);
  if (s instanceof z.ZodBoolean && (v.type === 'REG_DWORD' || v.type === 'REG_QWORD') && (v.value === 0 || v.value === 1)) return v.value === 1;
  if (s instanceof z.ZodString && v.type === 'REG_MULTI_SZ') return v.value.join('\n');
  if (s instanceof z.ZodString && v.type === 'REG_BINARY') return Buffer.from(v.value).toString('base64');
  return v.value;
}

/** Turns numbered sections into lists where the schema has a list. */
function listify(node: unknown, path: KeyPath): unknown {
  if (!isPlainObject(node)) return node;
  const s = schemaAt(AgentConfig, path);
  const keys = Object.keys(node);
  if (s instanceof z.ZodArray && keys.every((k) => /^\d+$/.test(k))) {
    return keys.map(Number).sort((a, b) => a - b).map((i) => listify(node[String(i)], [...path, i]));
  }
  return Object.fromEntries(keys.map((k) => [k, listify(node[k], [...path, k])]));
}

/** The configuration layer the registry tree describes. */
export function registryToConfig(tree: RegistryTree): Plain {
  const root: Plain = {};
  for (const [rel, values] of [...tree].sort(([a], [b]) => a.localeCompare(b))) {
    const path: string[] = [];
    let node = root;
    for (const part of rel ? rel.split('\\') : []) {
      const key = /^\d+$/.test(part) ? part : schemaKey(path.map((p) => (/^\d+$/.test(p) ? Number(p) : p)), part);
      path.push(key);
      if (!isPlainObject(node[key])) node[key] = {};
      node = node[key] as Plain;
    }
    const typed = path.map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    for (const [name, v] of values) {
      const key = schemaKey(typed, name);
      node[key] = coerce([...typed, key], v);
    }
  }
  return listify(root, []) as Plain;
}
