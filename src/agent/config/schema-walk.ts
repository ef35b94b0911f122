/**
 * Reading the config schema as data: the documentation generator, the registry reader (which
 * must know a key's type to turn a DWORD into a boolean) and error messages (which list the
 * keys an object accepts) all walk the same zod schema instead of keeping their own copies.
 */
import { z } from 'zod';

export type KeyPath = ReadonlyArray<string | number>;

/** What the wrappers around a value schema (default, optional, prefault) say about it. */
export interface Unwrapped {
  /** The value schema inside the wrappers. */
  inner: z.ZodType;
  optional: boolean;
  /** The default, when there is one (prefault `{}` counts: the object's own defaults apply). */
  defaultValue?: unknown;
  hasDefault: boolean;
  description?: string;
  docType?: string;
}

export function unwrap(schema: z.ZodType): Unwrapped {
  const out: Unwrapped = { inner: schema, optional: false, hasDefault: false };
  let s: z.ZodType = schema;
  for (;;) {
    // Outer layers win: `.describe()` may be called before or after `.default()`.
    const meta = z.globalRegistry.get(s);
    if (meta?.description !== undefined) out.description ??= meta.description;
    if (typeof meta?.['docType'] === 'string') out.docType ??= meta['docType'];
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
      if (!out.hasDefault) {
        out.hasDefault = true;
        out.defaultValue = s.def.defaultValue;
      }
      s = s.def.innerType as z.ZodType;
    } else if (s instanceof z.ZodOptional) {
      out.optional = true;
      s = s.def.innerType as z.ZodType;
    } else {
      out.inner = s;
      return out;
    }
  }
}

/** The value schema at `path` (array indexes step into the element), or undefined if none. */
export function schemaAt(root: z.ZodType, path: KeyPath): z.ZodType | undefined {
  let s: z.ZodType = unwrap(root).inner;
  for (const seg of path) {
    if (s instanceof z.ZodObject && typeof seg === 'string') {
      const next = (s.shape as Record<string, z.ZodType | undefined>)[seg];
      if (!next) return undefined;
      s = unwrap(next).inner;
    } else if (s instanceof z.ZodArray && typeof seg === 'number') {
      s = unwrap(s.element as z.ZodType).inner;
    } else return undefined;
  }
  return s;
}

/** The keys an object at `path` accepts (for "unknown key" messages). */
export function keysAt(root: z.ZodType, path: KeyPath): string[] {
  const s = schemaAt(root, path);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** A short human type for docs and messages. */
export function typeName(schema: z.ZodType, docType?: string): string {
  if (docType) return docType;
  if (schema instanceof z.ZodStringFormat) return schema.format === 'url' ? 'URL' : `string (${schema.format})`;
  if (schema instanceof z.ZodString) return 'string';
  if (schema instanceof z.ZodNumber) return schema.format === 'safeint' || schema.isInt ? 'integer' : 'number';
  if (schema instanceof z.ZodBoolean) return 'boolean';
  if (schema instanceof z.ZodEnum) return schema.options.map((o) => JSON.stringify(o)).join(' | ');
  if (schema instanceof z.ZodArray) {
    const el = unwrap(schema.element as z.ZodType);
    return `array of ${el.inner instanceof z.ZodObject ? 'objects' : typeName(el.inner, el.docType)}`;
  }
  if (schema instanceof z.ZodObject) return 'object';
  return schema.def.type;
}

export interface KeyDoc {
  /** Dotted key path; array elements appear as `[]`. */
  path: string;
  type: string;
  /** JSON of the default, or a word for how absence is read. */
  default: string;
  description: string;
}

/** Every key of the schema in declaration order, objects before their members. */
export function describeKeys(root: z.ZodType): KeyDoc[] {
  const rows: KeyDoc[] = [];
  const visit = (schema: z.ZodType, path: string): void => {
    const u = unwrap(schema);
    const isSection = u.inner instanceof z.ZodObject;
    const dflt = u.hasDefault
      ? isSection
        ? '(defaults below)'
        : JSON.stringify(u.defaultValue)
      : u.optional
        ? '(optional)'
        : '**required**';
    if (path) rows.push({ path, type: typeName(u.inner, u.docType), default: dflt, description: u.description ?? '' });
    if (u.inner instanceof z.ZodObject) {
      for (const [k, v] of Object.entries(u.inner.shape as Record<string, z.ZodType>)) visit(v, path ? `${path}.${k}` : k);
    } else if (u.inner instanceof z.ZodArray) {
      const el = unwrap(u.inner.element as z.ZodType).inner;
      if (el instanceof z.ZodObject) {
        for (const [k, v] of Object.entries(el.shape as Record<string, z.ZodType>)) visit(v, `${path}[].${k}`);
      }
    }
  };
  visit(root, '');
  return rows;
}
