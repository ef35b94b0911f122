import { mkdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { SEA_BUNDLE_OPTIONS } from '../scripts/build-agent-sea.js';

/** Where the benchmark keeps what it builds (bundles, the C relay of `hops`). */
export const BENCH_CACHE = new URL('../node_modules/.cache/zcc-bench/', import.meta.url).pathname;

/**
 * Bundles a TypeScript entry and the sources it imports into one ESM file (packages stay
 * external, resolved from node_modules) for plain Node, as installed code runs: no tsx loader
 * (about 40 MB of resident memory of its own) and none of its transform's helpers, which wrap
 * every function created at run time in a naming call (`__name`), CPU that compiled code does
 * not spend per connection.
 */
export async function bundleEntry(entry: string, opts: { like?: 'sea' } = {}): Promise<{ file: string; remove(): void }> {
  const dir = join(BENCH_CACHE, `${process.pid}-${basename(entry).replace(/\W/g, '_')}`);
  mkdirSync(dir, { recursive: true });
  const sea = opts.like === 'sea';
  const file = join(dir, basename(entry).replace(/\.ts$/, sea ? '.cjs' : '.mjs'));
  await build({
    entryPoints: [entry],
    outfile: file,
    logLevel: 'silent',
    // `sea`: the installed agent's bundling (SEA_BUNDLE_OPTIONS), so that a package behind a
    // dynamic import() loads only when that runs (in an ESM bundle with external packages, their
    // imports are hoisted and load at start); koffi's native part stays in node_modules.
    ...(sea ? { ...SEA_BUNDLE_OPTIONS, external: ['koffi'] } : { bundle: true, platform: 'node', target: 'node20', format: 'esm', packages: 'external' }),
  });
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
