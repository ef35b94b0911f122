/**
 * Builds what `electron .` runs from the project directory: the renderer and the preload
 * (scripts/build-renderer.ts) and the main process bundled to dist/main/main.js (package.json
 * "main"; the same esbuild flags as `npm run make`). Electron itself is not needed to build.
 * Run: npx tsx scripts/build-tray.ts [--dev]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { PROJECT_ROOT, buildPreload, buildRenderer } from './build-renderer.js';

export const TRAY_MAIN = path.join(PROJECT_ROOT, 'dist', 'main', 'main.js');

export async function buildTray(opts: { dev?: boolean } = {}): Promise<void> {
  await buildRenderer(opts);
  await buildPreload(opts);
  await esbuild.build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [path.join(PROJECT_ROOT, 'src', 'main', 'main.ts')],
    outfile: TRAY_MAIN,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: ['electron'],
    sourcemap: opts.dev ? 'inline' : false,
    logLevel: 'warning',
  });
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  await buildTray({ dev: process.argv.includes('--dev') });
  process.stdout.write(`built out/renderer, out/preload and ${path.relative(PROJECT_ROOT, TRAY_MAIN)}\n`);
}
