/**
 * `zcc config check FILE`: validates a configuration file exactly as the agent validates a
 * layer (same parser per format, same schema, same messages), so an administrator can test a
 * managed file before pushing it. Exit 0 with "FILE: OK", or 1 with the error.
 */
import { readFile } from 'node:fs/promises';
import { parseSource, type SourceFormat } from '../agent/config/sources.js';
import { ConfigFileError, validateLayer } from '../agent/config/validate.js';

const FORMATS: readonly SourceFormat[] = ['json', 'plist', 'reg', 'reg-json'];

export interface CheckResult {
  ok: boolean;
  /** What to print: "FILE: OK" (plus notes) or the error. */
  text: string;
}

export async function checkConfigFile(file: string, format?: string): Promise<CheckResult> {
  if (format !== undefined && !FORMATS.includes(format as SourceFormat)) {
    return { ok: false, text: `${file}: unknown format ${JSON.stringify(format)} (expected ${FORMATS.join(', ')})` };
  }
  try {
    let content: Buffer;
    try {
      content = await readFile(file);
    } catch (err) {
      return { ok: false, text: `${file}: cannot read: ${(err as Error).message}` };
    }
    const layer = await parseSource(file, content, format as SourceFormat | undefined);
    const { deferred } = validateLayer(layer, file);
    const notes = deferred.map((k) => `\n  note: ${k} is required and must come from another source`);
    return { ok: true, text: `${file}: OK${notes.join('')}` };
  } catch (err) {
    if (err instanceof ConfigFileError) return { ok: false, text: err.message };
    throw err;
  }
}

export async function configCommand(action: string | undefined, args: string[], format?: string): Promise<void> {
  const file = args[0];
  if (action !== 'check' || !file || args.length > 1) {
    process.stderr.write('usage: zcc config check FILE [--format json|plist|reg|reg-json]\n');
    process.exit(2);
  }
  const result = await checkConfigFile(file, format);
  if (result.ok) console.log(result.text);
  else console.error(result.text);
  process.exitCode = result.ok ? 0 : 1;
}
