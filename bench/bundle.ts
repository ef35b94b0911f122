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
export async function bundleEntry(entry: string, opts: { like?: 'sea' } = {}): Promise<{ file: string; remove(): void }> {
  const dir = join(CACHE, `${process.pid}-${basename(entry).replace(/\W/g, '_')}`);
  mkdirSync(dir, { recursive: true });
  const sea = opts.like === 'sea';
  const file = join(dir, basename(entry).replace(/\.ts$/, sea ? '.cjs' : '.mjs'));
  await build({
    entryPoints: [entry],
    outfile: file,
    bundle: true,
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
    // `sea`: one CommonJS file with the packages inside, as scripts/build-agent-sea.ts builds the
    // installed agent, so that a package behind a dynamic import() loads only when that runs
    // (in an ESM bundle with external packages, their imports are hoisted and load at start).
    ...(sea ? { format: 'cjs', external: ['koffi'], minifyWhitespace: true, minifySyntax: true } : { format: 'esm', packages: 'external' }),
  });
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
