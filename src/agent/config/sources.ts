/**
 * Where configuration comes from, per platform, and reading one source into a layer (a
 * partial AgentConfig object). Precedence: managed > user > defaults, per key path; keys the
 * managed source sets are locked (see loader.ts).
 *
 * - managed: what the administrator pushes. Linux `/etc/zcc/managed.json`; macOS the MDM
 *   profile's `/Library/Managed Preferences/com.zcc.agent.plist`; Windows the policy key
 *   HKLM\SOFTWARE\Policies\zcc (as a `.reg` export or JSON dump until a live reader exists).
 * - user: changes made through the agent (local API, `setUserValue`), kept in the agent's state
 *   directory rather than a home directory, because the agent is one system service for all
 *   users of the machine.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { findJsonError } from './json-position.js';
import { parseRegFile, parseRegJson, registryToConfig } from './registry.js';
import { ConfigFileError, isPlainObject, type Plain } from './validate.js';

export type SourceFormat = 'json' | 'plist' | 'reg' | 'reg-json';

export interface SourceRef {
  file: string;
  /** Detected from the name and content when absent. */
  format?: SourceFormat;
}

export interface SourcePaths {
  /** Undefined where no managed source can be read yet (the live Windows registry). */
  managed?: SourceRef;
  user: string;
  /** Last configuration that validated, so a corrupt file at boot still has a good fallback. */
  lastGood: string;
}

export function defaultSourcePaths(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): SourcePaths {
  switch (platform) {
    case 'darwin': {
      const dir = '/Library/Application Support/zcc';
      return {
        managed: { file: '/Library/Managed Preferences/com.zcc.agent.plist', format: 'plist' },
        user: `${dir}/config.json`,
        lastGood: `${dir}/config.last-good.json`,
      };
    }
    case 'win32': {
      const dir = path.win32.join(env['ProgramData'] ?? 'C:\\ProgramData', 'zcc');
      return { user: path.win32.join(dir, 'config.json'), lastGood: path.win32.join(dir, 'config.last-good.json') };
    }
    default:
      return {
        managed: { file: '/etc/zcc/managed.json', format: 'json' },
        user: '/var/lib/zcc/config.json',
        lastGood: '/var/lib/zcc/config.last-good.json',
      };
  }
}

export function detectFormat(file: string, content: Buffer): SourceFormat {
  const lower = file.toLowerCase();
  if (lower.endsWith('.plist')) return 'plist';
  if (lower.endsWith('.reg')) return 'reg';
  const head = content.subarray(0, 256).toString('utf8').trimStart();
  if (head.startsWith('<?xml') || head.startsWith('bplist')) return 'plist';
  // A JSON dump of the registry is keyed by registry paths.
  if (/^\{\s*"(HKEY_LOCAL_MACHINE|HKLM)\\\\/i.test(head)) return 'reg-json';
  return 'json';
}

/** The parser's message plus the line and column, which V8 does not always give. */
function jsonError(file: string, text: string, err: Error): ConfigFileError {
  const pos = findJsonError(text);
  const where = pos ? ` (line ${pos.line}, column ${pos.column}: expected ${pos.expected})` : '';
  return new ConfigFileError(file, `${file}: invalid JSON: ${err.message}${where}`);
}

/** Plist data (Uint8Array) and dates have no JSON form: data becomes base64, dates ISO text. */
function plistToPlain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(plistToPlain);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plistToPlain(x)]));
  return v;
}

/**
 * Parses a source's bytes into a layer; rejects with ConfigFileError naming the file. Async for
 * one reason: the property-list parser (plist with @xmldom/xmldom, ~13 MB resident once loaded)
 * is loaded only when a plist is read, i.e. on macOS, not by every agent.
 */
export async function parseSource(file: string, content: Buffer, format: SourceFormat = detectFormat(file, content)): Promise<Plain> {
  let raw: unknown;
  switch (format) {
    case 'json':
    case 'reg-json': {
      const text = content.toString('utf8').replace(/^\uFEFF/, '');
      try {
        raw = JSON.parse(text);
      } catch (err) {
        throw jsonError(file, text, err as Error);
      }
      if (format === 'reg-json') return registryToConfig(parseRegJson(raw, file));
      break;
    }
    case 'plist': {
      const { parse: parsePlist } = await import('plist');
      try {
        // The library treats bytes as binary (bplist00) and text as XML or OpenStep.
        const binary = content.subarray(0, 6).toString('latin1') === 'bplist';
        raw = plistToPlain(parsePlist(binary ? new Uint8Array(content) : content.toString('utf8')));
      } catch (err) {
        throw new ConfigFileError(file, `${file}: invalid property list: ${(err as Error).message}`);
      }
      break;
    }
    case 'reg':
      return registryToConfig(parseRegFile(content, file));
  }
  if (!isPlainObject(raw)) {
    throw ConfigFileError.invalid(file, [`(root): expected an object of settings, got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)}`]);
  }
  return raw;
}

/** Reads a source; undefined when the file does not exist (a source that is simply not used). */
export async function readSource(ref: SourceRef): Promise<Plain | undefined> {
  let content: Buffer;
  try {
    content = await readFile(ref.file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigFileError(ref.file, `${ref.file}: cannot read: ${(err as Error).message}`);
  }
  return parseSource(ref.file, content, ref.format ?? detectFormat(ref.file, content));
}
