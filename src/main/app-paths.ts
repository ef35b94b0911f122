/**
 * Where the tray app finds its files, relative to the app root (`app.getAppPath()`: the
 * project directory in development, the asar root when packaged). Pure, no electron import.
 *
 * Layout (built by `scripts/build-renderer.ts` and `scripts/make-icons.ts`):
 *   out/renderer/index.html, app.js, app.css   the React UI
 *   out/preload/preload.cjs                     the sandboxed preload (one CommonJS file)
 *   resources/icons/tray-<state>[Template][@2x].png
 */
import path from 'node:path';

export interface AppPaths {
  rendererDir: string;
  rendererIndex: string;
  preload: string;
  iconsDir: string;
}

export function appPaths(appRoot: string): AppPaths {
  const rendererDir = path.join(appRoot, 'out', 'renderer');
  return {
    rendererDir,
    rendererIndex: path.join(rendererDir, 'index.html'),
    preload: path.join(appRoot, 'out', 'preload', 'preload.cjs'),
    iconsDir: path.join(appRoot, 'resources', 'icons'),
  };
}
