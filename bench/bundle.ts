import { mkdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';

const CACHE = new URL('../node_modules/.cache/zcc-bench/', import.meta.url).pathname;

/**
 * Bundles a TypeScript entry and the sources it imports into one ESM file (packages stay
 * external, resolved from node_modules) for plain Node, as installed code runs: no tsx loader
 * (about 40 MB of resident memory of its own) and none of its transform's helpers, which wrap
 * every function created at run time in a naming call (`__name`), CPU that compiled code does
 * not spend per connection.
 */
export async function bundleEntry(entry: string): Promise<{ file: string; remove(): void }> {
  const dir = join(CACHE, `${process.pid}-${basename(entry).replace(/\W/g, '_')}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, basename(entry).replace(/\.ts$/, '.mjs'));
  await build({ entryPoints: [entry], outfile: file, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'silent' });
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
