import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { LOCALAPI_SOCKET_ENV } from '../common/localapi-schema.js';
import { PROJECT_ROOT, buildTray } from '../../scripts/build-renderer.js';
import { startWebUi, type WebUi } from './web-ui.js';

/**
 * Path of the Electron binary when it has been downloaded; it never is on CI machines. Read from
 * the package's path.txt rather than `require('electron')`, which would try to download it.
 */
function electronBinary(): string | undefined {
  const pkg = join(PROJECT_ROOT, 'node_modules', 'electron');
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return undefined;
  const binary = join(pkg, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(binary) ? binary : undefined;
}

/**
 * Brings the UI up for the demo: the Electron tray app when its binary is present, otherwise
 * the same React UI served on loopback for a browser.
 */
export async function startUi(opts: { listen: { host: string; port: number }; socketPath: string; outDir: string; log: Logger }): Promise<WebUi> {
  const electron = electronBinary();
  if (electron && !process.env.ZCC_NO_ELECTRON) {
    // The project directory as the app (package.json "main"), so that app.getAppPath() is the
    // root that src/main/app-paths.ts resolves out/renderer and resources/icons against.
    await buildTray();
    const child = spawn(electron, [PROJECT_ROOT], { env: { ...process.env, [LOCALAPI_SOCKET_ENV]: opts.socketPath }, stdio: 'ignore' });
    child.on('error', (err) => opts.log.warn({ err: err.message }, 'could not start the Electron tray app'));
    return { url: 'electron', close: async () => void child.kill('SIGTERM') };
  }
  return startWebUi(opts);
}
