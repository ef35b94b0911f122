/**
 * Bundles the React renderer with esbuild into out/renderer/ (index.html, app.js, app.css) and
 * the sandboxed preload into out/preload/preload.cjs (sandboxed preloads must be one CommonJS
 * file). Both are what src/main/app-paths.ts expects. `buildTray` adds the main process bundle
 * (scripts/build-tray.ts, `npm run tray`).
 * Run: npx tsx scripts/build-renderer.ts [--dev]
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Electron 45 ships Chromium 140 and Node 22. */
const CHROME_TARGET = 'chrome140';
const NODE_TARGET = 'node22';

export interface BuildOptions {
  /** Output directory; default out/renderer (or out/preload for the preload). */
  outDir?: string;
  /** Development build: no minification, React development mode, inline source maps. */
  dev?: boolean;
}

export interface BuildResult {
  outDir: string;
  files: string[];
}

export async function buildRenderer(opts: BuildOptions = {}): Promise<BuildResult> {
  const outDir = path.resolve(opts.outDir ?? path.join(PROJECT_ROOT, 'out', 'renderer'));
  const srcDir = path.join(PROJECT_ROOT, 'src', 'renderer');
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: { app: path.join(srcDir, 'main.tsx') },
    outdir: outDir,
    bundle: true,
    // A classic script: file:// pages cannot load module scripts without extra privileges.
    format: 'iife',
    platform: 'browser',
    target: CHROME_TARGET,
    jsx: 'automatic',
    tsconfig: path.join(PROJECT_ROOT, 'tsconfig.renderer.json'),
    minify: !opts.dev,
    sourcemap: opts.dev ? 'inline' : false,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': JSON.stringify(opts.dev ? 'development' : 'production') },
    logLevel: 'silent',
    metafile: true,
  });
  await copyFile(path.join(srcDir, 'index.html'), path.join(outDir, 'index.html'));
  const files = ['index.html', ...Object.keys(result.metafile.outputs).map((f) => path.relative(outDir, path.resolve(PROJECT_ROOT, f)))];
  return { outDir, files: files.sort() };
}

export async function buildPreload(opts: BuildOptions = {}): Promise<BuildResult> {
  const outDir = path.resolve(opts.outDir ?? path.join(PROJECT_ROOT, 'out', 'preload'));
  await mkdir(outDir, { recursive: true });
  await esbuild.build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [path.join(PROJECT_ROOT, 'src', 'preload', 'preload.ts')],
    outfile: path.join(outDir, 'preload.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: NODE_TARGET,
    external: ['electron'],
    minify: !opts.dev,
    sourcemap: opts.dev ? 'inline' : false,
    logLevel: 'silent',
  });
  return { outDir, files: ['preload.cjs'] };
}

/** The Electron main process bundle: package.json "main". */
export const TRAY_MAIN = path.join(PROJECT_ROOT, 'dist', 'main', 'main.js');

/**
 * Everything `electron .` runs from the project directory: renderer, preload, and the main
 * process bundled to dist/main/main.js (the same esbuild flags as `npm run make`).
 */
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
    target: NODE_TARGET,
    external: ['electron'],
    sourcemap: opts.dev ? 'inline' : false,
    logLevel: 'warning',
  });
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const dev = process.argv.includes('--dev');
  for (const r of [await buildRenderer({ dev }), await buildPreload({ dev })]) {
    process.stdout.write(`built ${r.files.join(', ')} in ${path.relative(PROJECT_ROOT, r.outDir)}\n`);
  }
}
