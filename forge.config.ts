/**
 * Electron Forge 7 config for the tray app. Build the UI first (`npx tsx scripts/build-renderer.ts`
 * writes out/renderer and out/preload) and the main process to dist/main (package.json "main").
 * Forge's own output goes to out/forge so that out/renderer and out/preload can be packaged.
 */
import { FuseV1Options, FuseVersion } from '@electron/fuses';
import { MakerDeb } from '@electron-forge/maker-deb';
import { MakerZIP } from '@electron-forge/maker-zip';
import { FusesPlugin } from '@electron-forge/plugin-fuses';
import type { ForgeConfig } from '@electron-forge/shared-types';

/** What goes into app.asar: the built main process, UI bundle, icons, production modules. */
const PACKAGED = [
  /^\/package\.json$/,
  /^\/dist(\/(main|common)(\/.*)?)?$/,
  /^\/out(\/(renderer|preload)(\/.*)?)?$/,
  /^\/resources(\/icons(\/.*)?)?$/,
  /^\/node_modules(\/.*)?$/,
];

/** Packager ignore function: true drops the path (given relative to the project, '/'-rooted). */
export function ignoreForPackaging(file: string): boolean {
  if (file === '') return false;
  const p = file.replaceAll('\\', '/');
  if (/\.map$/.test(p) || /^\/node_modules\/\.bin(\/|$)/.test(p)) return true;
  return !PACKAGED.some((re) => re.test(p));
}

const config: ForgeConfig = {
  outDir: 'out/forge',
  packagerConfig: {
    name: 'zcc',
    executableName: 'zcc-tray',
    appBundleId: 'org.zcc.tray',
    asar: true,
    // Without extension: packager picks .icns / .ico per platform when present.
    icon: 'resources/icons/app',
    ignore: ignoreForPackaging,
  },
  rebuildConfig: {},
  makers: [
    new MakerZIP({}, ['darwin', 'linux', 'win32']),
    new MakerDeb({
      options: {
        name: 'zcc-tray',
        productName: 'zcc',
        bin: 'zcc-tray',
        icon: 'resources/icons/app.png',
        section: 'net',
        priority: 'optional',
        categories: ['Network'],
        description: 'Tray app of the zcc zero-trust client connector',
      },
    }),
  ],
  plugins: [
    new FusesPlugin({
      version: FuseVersion.V1,
      resetAdHocDarwinSignature: process.platform === 'darwin' && process.arch === 'arm64',
      [FuseV1Options.RunAsNode]: false,
      [FuseV1Options.EnableCookieEncryption]: true,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
      [FuseV1Options.EnableNodeCliInspectArguments]: false,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
      [FuseV1Options.OnlyLoadAppFromAsar]: true,
    }),
  ],
};

export default config;
