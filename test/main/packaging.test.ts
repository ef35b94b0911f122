/** The committed tray icons and the Forge config, checked without Electron. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { FuseV1Options } from '@electron/fuses';
import { describe, expect, it } from 'vitest';
import config, { ignoreForPackaging } from '../../forge.config.js';
import { CONTENT_SECURITY_POLICY } from '../../src/main/security.js';
import { TRAY_ICON_STATES, trayIconFile } from '../../src/main/tray-state.js';
import { PROJECT_ROOT } from '../../scripts/build-renderer.js';
import { crc32 } from '../../scripts/make-icons.js';

const ICONS = path.join(PROJECT_ROOT, 'resources', 'icons');

/** Parses a PNG far enough to check signature, chunk CRCs, size and RGBA pixel data. */
function readPng(file: string): { width: number; height: number; alpha: number[] } {
  const buf = readFileSync(file);
  expect(buf.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    expect(buf.readUInt32BE(off + 8 + len)).toBe(crc32(buf.subarray(off + 4, off + 8 + len)));
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([...data.subarray(8, 13)]).toEqual([8, 6, 0, 0, 0]);
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe((width * 4 + 1) * height);
  const alpha: number[] = [];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) alpha.push(raw[y * (width * 4 + 1) + 1 + x * 4 + 3] ?? 0);
  return { width, height, alpha };
}

describe('tray icons', () => {
  const cases = TRAY_ICON_STATES.flatMap((state) =>
    [false, true].flatMap((template) => {
      const base = trayIconFile(state, { template }).replace(/\.png$/, '');
      return [[`${base}.png`, 16], [`${base}@2x.png`, 32]] as [string, number][];
    }),
  );
  it.each(cases)('%s is a valid %ipx RGBA PNG: transparent corner, opaque shape', (name, size) => {
    const png = readPng(path.join(ICONS, name));
    expect([png.width, png.height]).toEqual([size, size]);
    expect(png.alpha[0]).toBe(0);
    expect(Math.max(...png.alpha)).toBe(255);
  });

  it('template variants are pairwise distinct shapes', () => {
    const shapes = TRAY_ICON_STATES.map((s) => readPng(path.join(ICONS, trayIconFile(s, { template: true }).replace('.png', '@2x.png'))).alpha.join());
    expect(new Set(shapes).size).toBe(TRAY_ICON_STATES.length);
  });
});

describe('forge.config', () => {
  it('sets the fuses', () => {
    const plugin = config.plugins?.[0] as unknown as { fusesConfig: Record<number, boolean> };
    expect(plugin.fusesConfig).toMatchObject({
      [FuseV1Options.RunAsNode]: false,
      [FuseV1Options.EnableCookieEncryption]: true,
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
      [FuseV1Options.EnableNodeCliInspectArguments]: false,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
      [FuseV1Options.OnlyLoadAppFromAsar]: true,
    });
    expect(config.packagerConfig?.asar).toBe(true);
    expect(config.makers?.map((m) => (m as { name: string }).name)).toEqual(['zip', 'deb']);
  });

  it.each([
    ['/package.json', false],
    ['/dist', false],
    ['/dist/main/main.js', false],
    ['/dist/common/bridge.js', false],
    ['/out', false],
    ['/out/renderer/index.html', false],
    ['/out/preload/preload.cjs', false],
    ['/resources/icons/tray-connected.png', false],
    ['/node_modules/zod/package.json', false],
    ['/dist/edge/broker.js', true],
    ['/dist/main/main.js.map', true],
    ['/out/forge/make/zcc.zip', true],
    ['/src/main/main.ts', true],
    ['/test/ui/renderer.test.ts', true],
    ['/node_modules/.bin/tsc', true],
    ['/.git/config', true],
    ['/forge.config.ts', true],
  ])('packaging %s: ignored=%s', (file, ignored) => {
    expect(ignoreForPackaging(file)).toBe(ignored);
  });
});

describe('renderer index.html', () => {
  it('carries the main process CSP as a meta tag (minus frame-ancestors, which meta cannot set)', () => {
    const html = readFileSync(path.join(PROJECT_ROOT, 'src', 'renderer', 'index.html'), 'utf8');
    const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html)?.[1];
    const header = CONTENT_SECURITY_POLICY.split('; ').filter((d) => !d.startsWith('frame-ancestors')).join('; ');
    expect(meta).toBe(header);
  });
});
