/**
 * Generates the tray icons in resources/icons with nothing but node:zlib:
 *   tray-<state>.png / @2x     a filled circle in the state's colour (16 and 32 px)
 *   tray-<state>Template.png / @2x   macOS template images: black + alpha only, so the state is
 *                              told by shape (disc, ring, ring+dot, half, bar, cross)
 *   app.png                    256 px application icon (deb maker, Linux window icon)
 * Run: npx tsx scripts/make-icons.ts [outDir]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';
import { TRAY_ICON_STATES, trayIconFile, type TrayIconState } from '../src/main/tray-state.js';

type Rgb = readonly [number, number, number];
/** Inside test in normalised coordinates: centre (0,0), the icon spans -1..1. */
type Shape = (x: number, y: number) => boolean;

const COLOURS: Record<TrayIconState, Rgb> = {
  connected: [0x1f, 0x9d, 0x55],
  connecting: [0x25, 0x74, 0xe0],
  'needs-reauth': [0xe8, 0x9a, 0x0c],
  'safe-mode': [0x7c, 0x4d, 0xdb],
  error: [0xd9, 0x2d, 0x20],
  disconnected: [0x8a, 0x94, 0xa3],
};

const R = 0.875;
const W = 0.26;
const r = (x: number, y: number): number => Math.hypot(x, y);
const disc: Shape = (x, y) => r(x, y) <= R;
const ring: Shape = (x, y) => r(x, y) <= R && r(x, y) >= R - W;
const or =
  (...shapes: Shape[]): Shape =>
  (x, y) =>
    shapes.some((s) => s(x, y));

const TEMPLATE_SHAPES: Record<TrayIconState, Shape> = {
  connected: disc,
  disconnected: ring,
  connecting: or(ring, (x, y) => r(x, y) <= 0.3),
  'needs-reauth': or(ring, (x, y) => disc(x, y) && x <= 0),
  'safe-mode': or(ring, (x, y) => disc(x, y) && Math.abs(y) <= W / 2),
  error: or(ring, (x, y) => disc(x, y) && Math.min(Math.abs(x - y), Math.abs(x + y)) <= W / Math.SQRT2),
};

/** RGBA pixels of `shape` in `colour`, anti-aliased with 4x4 supersampling. */
export function rasterize(size: number, shape: Shape, colour: Rgb): Uint8Array {
  const px = new Uint8Array(size * size * 4);
  const n = 4;
  for (let py = 0; py < size; py++) {
    for (let pxX = 0; pxX < size; pxX++) {
      let hits = 0;
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const x = ((pxX + (sx + 0.5) / n) / size) * 2 - 1;
          const y = ((py + (sy + 0.5) / n) / size) * 2 - 1;
          if (shape(x, y)) hits++;
        }
      }
      const o = (py * size + pxX) * 4;
      px.set([colour[0], colour[1], colour[2], Math.round((255 * hits) / (n * n))], o);
    }
  }
  return px;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A minimal valid PNG: 8-bit RGBA, no interlace, filter 0 on every row. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0;
    raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (width * 4 + 1) + 1);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array()),
  ]);
}

/** Writes every icon into `outDir`; returns the file names written. */
export function makeIcons(outDir: string): string[] {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, size: number, shape: Shape, colour: Rgb): void => {
    writeFileSync(path.join(outDir, name), encodePng(size, size, rasterize(size, shape, colour)));
    written.push(name);
  };
  for (const state of TRAY_ICON_STATES) {
    for (const template of [false, true]) {
      const base = trayIconFile(state, { template }).replace(/\.png$/, '');
      const shape = template ? TEMPLATE_SHAPES[state] : disc;
      const colour: Rgb = template ? [0, 0, 0] : COLOURS[state];
      write(`${base}.png`, 16, shape, colour);
      write(`${base}@2x.png`, 32, shape, colour);
    }
  }
  write('app.png', 256, or(ring, (x, y) => r(x, y) <= 0.45), COLOURS.connecting);
  return written;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const outDir = path.resolve(process.argv[2] ?? path.join(root, 'resources', 'icons'));
  const files = makeIcons(outDir);
  process.stdout.write(`wrote ${files.length} icons to ${outDir}\n`);
}
