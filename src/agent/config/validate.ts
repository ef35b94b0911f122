/**
 * Validation of configuration layers and their merge. Every message names the file, the key
 * path and what was expected, in the `parseConfig` format of the cloud config:
 *   FILE: invalid configuration
 *     key.path: message
 */
import type { z } from 'zod';
import { AgentConfig } from './schema.js';
import { keysAt, type KeyPath } from './schema-walk.js';

/** A source that cannot be read, parsed or validated. `message` is the full text to show. */
export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigFileError';
  }

  static invalid(file: string, lines: string[]): ConfigFileError {
    return new ConfigFileError(file, `${file}: invalid configuration\n  ${lines.join('\n  ')}`);
  }
}

export type Plain = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);
}

export function formatPath(path: KeyPath): string {
  return path.length ? path.join('.') : '(root)';
}

/** Splits "dns.searchDomains" / "tenants.0.enabled" into segments; digits index arrays. */
export function parseKeyPath(path: string): Array<string | number> {
  if (!/^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$/.test(path)) throw new Error(`${JSON.stringify(path)}: expected a dotted key path such as dns.searchDomains`);
  return path.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function getAt(obj: unknown, path: KeyPath): unknown {
  let cur: unknown = obj;
  for (const seg of path) {
    if (typeof seg === 'number' ? !Array.isArray(cur) : !isPlainObject(cur)) return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

/** Returns a copy of `obj` with `value` at `path` (undefined deletes), creating objects on the way. */
export function setAt(obj: Plain, path: KeyPath, value: unknown): Plain {
  const root: Plain = structuredClone(obj);
  let cur: Record<string | number, unknown> = root;
  path.forEach((seg, i) => {
    if (i === path.length - 1) {
      if (value === undefined && !Array.isArray(cur)) delete cur[seg];
      else cur[seg] = value;
      return;
    }
    const next = cur[seg];
    const fresh = typeof path[i + 1] === 'number' ? [] : {};
    if (typeof path[i + 1] === 'number' ? !Array.isArray(next) : !isPlainObject(next)) cur[seg] = fresh;
    cur = cur[seg] as Record<string | number, unknown>;
  });
  return root;
}

/** Key paths of the values a layer sets. Arrays are single values: a list is set as a whole. */
export function leafPaths(obj: unknown, prefix = ''): string[] {
  if (!isPlainObject(obj)) return prefix ? [prefix] : [];
  return Object.entries(obj).flatMap(([k, v]) => (v === undefined ? [] : leafPaths(v, prefix ? `${prefix}.${k}` : k)));
}

/** Deep merge, later layers win per key path; arrays and scalars are replaced whole. */
export function mergeLayers(layers: ReadonlyArray<unknown>): Plain {
  const merge = (a: unknown, b: unknown): unknown => {
    if (!isPlainObject(a) || !isPlainObject(b)) return structuredClone(b);
    const out: Plain = { ...a };
    for (const [k, v] of Object.entries(b)) if (v !== undefined) out[k] = merge(a[k], v);
    return out;
  };
  return layers.reduce<Plain>((acc, l) => (l === undefined ? acc : (merge(acc, l) as Plain)), {});
}

/** Key paths whose values differ between two effective configurations. */
export function changedPaths(a: unknown, b: unknown): string[] {
  const paths = new Set([...leafPaths(a), ...leafPaths(b)]);
  return [...paths].filter((p) => {
    const seg = p.split('.');
    return JSON.stringify(getAt(a, seg)) !== JSON.stringify(getAt(b, seg));
  }).sort();
}

function shortValue(v: unknown): string {
  const text = v === null ? 'null' : Array.isArray(v) ? 'an array' : isPlainObject(v) ? 'an object' : JSON.stringify(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

interface Line {
  path: KeyPath;
  text: string;
  /** A required key is missing from an object outside any list: another layer may supply it. */
  missing: boolean;
}

function issueLines(issue: z.core.$ZodIssue, raw: unknown): Line[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const allowed = keysAt(AgentConfig, path).join(', ');
    return issue.keys.map((k) => ({ path: [...path, k], text: `unknown key (expected one of: ${allowed})`, missing: false }));
  }
  const value = getAt(raw, path);
  if (issue.code === 'invalid_type') {
    if (value === undefined) {
      return [{ path, text: `required, expected ${issue.expected}`, missing: !path.some((p) => typeof p === 'number') }];
    }
    return [{ path, text: `expected ${issue.expected}, got ${shortValue(value)}`, missing: false }];
  }
  return [{ path, text: issue.message, missing: false }];
}

export interface LayerResult {
  /** Required keys this layer leaves to another layer (e.g. a user file tuning dr.pollIntervalSeconds). */
  deferred: string[];
}

/**
 * Validates one layer on its own. Missing required keys of objects outside lists are left to
 * the merge, so a layer may set some keys of a section and another layer the rest; list
 * entries are set whole by one layer, so they must be complete.
 */
export function validateLayer(raw: unknown, file: string): LayerResult {
  if (!isPlainObject(raw)) throw ConfigFileError.invalid(file, [`(root): expected an object of settings, got ${shortValue(raw)}`]);
  const parsed = AgentConfig.safeParse(raw);
  if (parsed.success) return { deferred: [] };
  const lines = parsed.error.issues.flatMap((i) => issueLines(i, raw));
  const errors = lines.filter((l) => !l.missing);
  if (errors.length) throw ConfigFileError.invalid(file, errors.map((l) => `${formatPath(l.path)}: ${l.text}`));
  return { deferred: lines.map((l) => formatPath(l.path)) };
}

export interface Layer {
  file: string;
  raw: Plain | undefined;
}

/**
 * Merges layers (lowest precedence first) over the defaults and validates the result. An
 * error is blamed on the highest layer that sets anything on the failing key's way.
 */
export function mergeAndValidate(layers: Layer[]): AgentConfig {
  const merged = mergeLayers(layers.map((l) => l.raw));
  const parsed = AgentConfig.safeParse(merged);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.flatMap((i) => issueLines(i, merged));
  const first = lines[0]?.path ?? [];
  const blame = [...layers].reverse().find((l) => first.some((_, n) => getAt(l.raw, first.slice(0, first.length - n)) !== undefined));
  const file = blame?.file ?? layers[layers.length - 1]?.file ?? '(defaults)';
  throw ConfigFileError.invalid(file, lines.map((l) => `${formatPath(l.path)}: ${l.text}`));
}
