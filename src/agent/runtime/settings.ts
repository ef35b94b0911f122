import type { Setting } from '../../common/localapi-schema.js';
import { z } from 'zod';
import { describeKeys, schemaAt, unwrap } from '../config/schema-walk.js';
import { AgentConfig } from '../config/schema.js';
import { getAt, parseKeyPath } from '../config/validate.js';

const KEYS = describeKeys(AgentConfig);

/**
 * The settings the UI lists: every leaf key outside `tenants` (shown per tenant instead), with
 * its effective value and whether the administrator locked it. Enrollment tokens live only
 * under `tenants`, so nothing secret is listed.
 */
export function settingsList(config: AgentConfig, isManaged: (key: string) => boolean): Setting[] {
  const sections = new Set(KEYS.filter((k) => k.type === 'object').map((k) => k.path));
  return KEYS.filter((k) => !k.path.startsWith('tenants') && !sections.has(k.path)).map((k) => ({
    key: k.path,
    // null: not set (optional keys without a default).
    value: getAt(config, parseKeyPath(k.path)) ?? null,
    managed: isManaged(k.path),
    description: k.description || undefined,
    choices: choicesOf(k.path),
  }));
}

function choicesOf(path: string): string[] | undefined {
  const schema = schemaAt(AgentConfig, parseKeyPath(path));
  const inner = schema && unwrap(schema).inner;
  return inner instanceof z.ZodEnum ? inner.options.map(String) : undefined;
}
