/**
 * Builds what `electron .` runs from the project directory (`npm run tray`): the renderer, the
 * preload and the main process bundle dist/main/main.js. Electron is not needed to build.
 * Run: npx tsx scripts/build-tray.ts [--dev]
 */
import path from 'node:path';
import { PROJECT_ROOT, TRAY_MAIN, buildTray } from './build-renderer.js';

await buildTray({ dev: process.argv.includes('--dev') });
process.stdout.write(`built out/renderer, out/preload and ${path.relative(PROJECT_ROOT, TRAY_MAIN)}\n`);
