/**
 * The committed tray icons, the Forge config, the electron-builder config and the installers'
 * scripts, checked without Electron; the Linux scripts run for real against a throwaway root.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { FuseV1Options } from '@electron/fuses';
import { getConfig, validateConfiguration } from 'app-builder-lib/out/util/config/config.js';
import { DebugLogger } from 'builder-util';
import type { Configuration, FileSet } from 'electron-builder';
import { parse as parsePlist } from 'plist';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const PACKAGING = path.join(PROJECT_ROOT, 'resources', 'packaging');
const AFTER_INSTALL = path.join(PACKAGING, 'linux', 'after-install.sh');
const AFTER_REMOVE = path.join(PACKAGING, 'linux', 'after-remove.sh');
const UNIT = readFileSync(path.join(PROJECT_ROOT, 'resources', 'systemd', 'zcc-agent.service'), 'utf8');

/** Forge's fuse options under the names electron-builder's `electronFuses` uses. */
const FUSE_NAMES: Record<string, FuseV1Options> = {
  runAsNode: FuseV1Options.RunAsNode,
  enableCookieEncryption: FuseV1Options.EnableCookieEncryption,
  enableNodeOptionsEnvironmentVariable: FuseV1Options.EnableNodeOptionsEnvironmentVariable,
  enableNodeCliInspectArguments: FuseV1Options.EnableNodeCliInspectArguments,
  enableEmbeddedAsarIntegrityValidation: FuseV1Options.EnableEmbeddedAsarIntegrityValidation,
  onlyLoadAppFromAsar: FuseV1Options.OnlyLoadAppFromAsar,
};

function extraResources(c: Configuration | null | undefined): FileSet[] {
  const list = c?.extraResources;
  return (Array.isArray(list) ? list : []).filter((e): e is FileSet => typeof e === 'object' && e !== null);
}

describe('electron-builder.yml', () => {
  let eb: Configuration;
  beforeAll(async () => {
    // electron-builder's own loader and schema validation, as `electron-builder` runs them.
    eb = await getConfig(PROJECT_ROOT, null, null);
    await validateConfiguration(eb, new DebugLogger(false));
  });

  it('names the app as forge.config.ts does', () => {
    expect(eb.appId).toBe(config.packagerConfig?.appBundleId);
    expect(eb.executableName).toBe(config.packagerConfig?.executableName);
    expect(eb.productName).toBe(config.packagerConfig?.name);
  });

  it('sets the same fuses as forge.config.ts: RunAsNode off, so the agent needs its own runtime', () => {
    const plugin = config.plugins?.[0] as unknown as { fusesConfig: Record<number, boolean> };
    const fuses = eb.electronFuses as Record<string, boolean>;
    expect(Object.keys(fuses).sort()).toEqual(Object.keys(FUSE_NAMES).sort());
    for (const [name, option] of Object.entries(FUSE_NAMES)) expect([name, fuses[name]]).toEqual([name, plugin.fusesConfig[option]]);
    expect(fuses.runAsNode).toBe(false);
  });

  it('packs the bundled main process and UI, no node_modules, and the agent next to app.asar', async () => {
    expect(eb.asar).toBe(true);
    // electron-builder's loader normalises `files` to file sets with a filter list.
    const files = (Array.isArray(eb.files) ? eb.files : [eb.files]).flatMap((f) => (typeof f === 'string' ? [f] : [f?.filter ?? []].flat()));
    expect(files).toEqual(expect.arrayContaining(['package.json', 'dist/main/**', 'out/renderer/**', 'out/preload/**', 'resources/icons/**']));
    expect(files.some((f) => f.includes('node_modules') && !f.startsWith('!'))).toBe(false);
    const hook = (await import(path.join(PROJECT_ROOT, String(eb.beforeBuild)))) as { beforeBuild: () => Promise<boolean> };
    expect(await hook.beforeBuild()).toBe(false);
    expect(extraResources(eb)).toEqual(expect.arrayContaining([{ from: 'out/agent', to: 'agent' }, { from: 'resources/icons', to: 'icons' }]));
    expect(extraResources(eb.linux)).toContainEqual({ from: 'resources/systemd/zcc-agent.service', to: 'systemd/zcc-agent.service' });
  });

  it('makes deb and rpm with the after-install and after-remove scripts', () => {
    expect(eb.linux?.target).toEqual(['deb', 'rpm']);
    for (const target of [eb.deb, eb.rpm]) {
      expect(path.resolve(PROJECT_ROOT, String(target?.afterInstall))).toBe(AFTER_INSTALL);
      expect(path.resolve(PROJECT_ROOT, String(target?.afterRemove))).toBe(AFTER_REMOVE);
    }
  });

  it.each([AFTER_INSTALL, AFTER_REMOVE])('%s is executable, valid sh, free of template macros, and handles the unit', (script) => {
    expect(statSync(script).mode & 0o111).toBe(0o111);
    const text = readFileSync(script, 'utf8');
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(spawnSync('sh', ['-n', script]).status).toBe(0);
    // fpm gets the script through electron-builder's template engine, which fails the build on
    // an unknown ${name} (letters only) macro.
    expect(text.match(/\$\{[a-zA-Z]+\}/g)).toBeNull();
    expect(text).toContain('UNIT=zcc-agent.service');
    expect(text).toContain(`APP_DIR=/opt/${eb.productName}`);
  });

  it('makes a per-machine NSIS installer that registers the agent service', () => {
    expect(eb.win?.target).toEqual(['nsis']);
    expect(eb.nsis?.perMachine).toBe(true);
    const nsh = readFileSync(path.resolve(PROJECT_ROOT, String(eb.nsis?.include)), 'utf8');
    expect(nsh).toMatch(/!macro customInstall[\s\S]*sc\.exe" create zcc-agent binPath= "\\"\$INSTDIR\\resources\\agent\\zcc-agent\.exe\\" agent"[\s\S]*!macroend/);
    expect(nsh).toMatch(/!macro customUnInstall[\s\S]*sc\.exe" delete zcc-agent[\s\S]*!macroend/);
  });

  it('makes a macOS pkg whose scripts install the agent LaunchDaemon', () => {
    expect(eb.mac?.target).toEqual(['pkg']);
    expect(eb.pkg?.isRelocatable).toBe(false);
    const scripts = path.resolve(PROJECT_ROOT, String(eb.directories?.buildResources), String(eb.pkg?.scripts));
    for (const name of ['preinstall', 'postinstall']) {
      const file = path.join(scripts, name);
      expect(statSync(file).mode & 0o111).toBe(0o111);
      expect(spawnSync('sh', ['-n', file]).status).toBe(0);
    }
    const postinstall = readFileSync(path.join(scripts, 'postinstall'), 'utf8');
    expect(postinstall).toContain('launchctl bootstrap system "$PLIST"');
    const launchd = extraResources(eb.mac).find((e) => String(e.to).startsWith('launchd/'));
    expect(postinstall).toContain(`"$APP/Contents/Resources/${String(launchd?.to).replace('org.zcc.agent', '$LABEL')}"`);
    // What postinstall's sed makes of the template for the default install location.
    const app = `${eb.pkg?.installLocation}/${eb.productName}.app`;
    const rendered = readFileSync(path.join(PROJECT_ROOT, String(launchd?.from)), 'utf8').replaceAll('@ZCC_APP@', app).replaceAll('@ZCC_OPERATOR_GID@', '501');
    const job = parsePlist(rendered) as { Label: string; ProgramArguments: string[]; RunAtLoad: boolean };
    expect(job.Label).toBe('org.zcc.agent');
    expect(job.ProgramArguments).toEqual([`${app}/Contents/Resources/agent/zcc-agent`, 'agent', '--operator-group', '501']);
    expect(job.RunAtLoad).toBe(true);
  });
});

/**
 * Runs the Linux scripts for real with ZCC_PACKAGING_ROOT set to a throwaway directory laid out
 * as the package leaves it (/opt/zcc/resources/... from extraResources).
 */
describe('Linux after-install / after-remove in a throwaway root', () => {
  const isRoot = process.getuid?.() === 0;
  const realPaths = ['/usr/bin/zcc', '/usr/lib/systemd/system/zcc-agent.service', '/lib/systemd/system/zcc-agent.service'];
  const realBefore = realPaths.map((p) => existsSync(p));
  const systemctl = spawnSync('sh', ['-c', 'command -v systemctl']).status === 0;
  const roots: string[] = [];
  if (!isRoot) console.log('not root: the zcc group is put in the throwaway root beforehand (groupadd --prefix needs root)');
  if (!systemctl) console.log('no systemctl here: the offline enable is not checked');

  afterAll(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
    // Nothing leaked onto the real system.
    expect(realPaths.map((p) => existsSync(p))).toEqual(realBefore);
  });

  function makeRoot(unitDir: '/usr/lib/systemd/system' | '/lib/systemd/system'): string {
    const root = mkdtempSync(path.join(tmpdir(), 'zcc-pkgroot-'));
    roots.push(root);
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    writeFileSync(path.join(root, 'etc', 'group'), `root:x:0:\n${isRoot ? '' : 'zcc:x:999:\n'}`);
    mkdirSync(path.join(root, unitDir), { recursive: true });
    const resources = path.join(root, 'opt', 'zcc', 'resources');
    cpSync(path.join(PROJECT_ROOT, 'resources', 'systemd', 'zcc-agent.service'), path.join(resources, 'systemd', 'zcc-agent.service'));
    cpSync(path.join(PROJECT_ROOT, 'resources', 'autostart', 'zcc-tray.desktop'), path.join(resources, 'autostart', 'zcc-tray.desktop'));
    mkdirSync(path.join(resources, 'agent'), { recursive: true });
    writeFileSync(path.join(resources, 'agent', 'zcc-agent'), '#!/bin/sh\n', { mode: 0o755 });
    return root;
  }

  function run(script: string, root: string, ...args: string[]): string {
    const r = spawnSync('sh', [script, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ZCC_PACKAGING_ROOT: root, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
    });
    expect(r.status, `${path.basename(script)} ${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout;
  }

  const at = (root: string, p: string): string => path.join(root, p);
  const groupLines = (root: string): string[] => readFileSync(at(root, 'etc/group'), 'utf8').split('\n').filter((l) => l.startsWith('zcc:'));

  it('Debian: configure installs and enables the unit, links, group; remove keeps state; purge drops it', () => {
    const root = makeRoot('/usr/lib/systemd/system');
    run(AFTER_INSTALL, root, 'configure');
    const unit = at(root, 'usr/lib/systemd/system/zcc-agent.service');
    expect(readFileSync(unit, 'utf8')).toBe(UNIT);
    expect(statSync(unit).mode & 0o7777).toBe(0o644);
    expect(readlinkSync(at(root, 'usr/bin/zcc'))).toBe('/opt/zcc/resources/agent/zcc-agent');
    expect(readlinkSync(at(root, 'usr/bin/zcc-tray'))).toBe('/opt/zcc/zcc-tray');
    expect(statSync(at(root, 'etc/zcc')).mode & 0o7777).toBe(0o755);
    // The tray app starts at every desktop login.
    const autostart = at(root, 'etc/xdg/autostart/zcc-tray.desktop');
    expect(readFileSync(autostart, 'utf8')).toMatch(/^Exec=\/usr\/bin\/zcc-tray --hidden$/m);
    expect(statSync(autostart).mode & 0o7777).toBe(0o644);
    const [group] = groupLines(root);
    expect(Number(group?.split(':')[2])).toBeLessThan(1000); // a system group
    const wants = at(root, 'etc/systemd/system/multi-user.target.wants/zcc-agent.service');
    if (systemctl) expect(readlinkSync(wants)).toBe('/usr/lib/systemd/system/zcc-agent.service');

    // Upgrade: the same again, nothing duplicated; the old version's postrm "upgrade" keeps all.
    run(AFTER_INSTALL, root, 'configure', '0.0.9');
    run(AFTER_REMOVE, root, 'upgrade', '0.1.0');
    expect(groupLines(root)).toHaveLength(1);
    expect(existsSync(unit)).toBe(true);

    mkdirSync(at(root, 'var/lib/zcc'), { recursive: true });
    writeFileSync(at(root, 'var/lib/zcc/state.sealed'), 'x');
    run(AFTER_REMOVE, root, 'remove');
    for (const p of [unit, at(root, 'usr/bin/zcc'), at(root, 'usr/bin/zcc-tray'), autostart]) expect(existsSync(p), p).toBe(false);
    expect(() => lstatSync(wants)).toThrow();
    expect(existsSync(at(root, 'var/lib/zcc/state.sealed'))).toBe(true);
    expect(existsSync(at(root, 'etc/zcc'))).toBe(true);

    run(AFTER_REMOVE, root, 'purge');
    expect(existsSync(at(root, 'var/lib/zcc'))).toBe(false);
    expect(existsSync(at(root, 'etc/zcc'))).toBe(false);
    expect(groupLines(root)).toHaveLength(1);
  });

  it('RPM on a system with only /lib/systemd/system: %post 1 installs there, %postun 1 keeps, 0 removes', () => {
    const root = makeRoot('/lib/systemd/system');
    run(AFTER_INSTALL, root, '1');
    const unit = at(root, 'lib/systemd/system/zcc-agent.service');
    expect(statSync(unit).mode & 0o7777).toBe(0o644);
    expect(existsSync(at(root, 'usr/lib/systemd/system'))).toBe(false);
    if (systemctl) expect(readlinkSync(at(root, 'etc/systemd/system/multi-user.target.wants/zcc-agent.service'))).toBe('/lib/systemd/system/zcc-agent.service');
    run(AFTER_INSTALL, root, '2');
    run(AFTER_REMOVE, root, '1');
    expect(existsSync(unit)).toBe(true);
    run(AFTER_REMOVE, root, '0');
    expect(existsSync(unit)).toBe(false);
    expect(existsSync(at(root, 'usr/bin/zcc'))).toBe(false);
  });

  it('leaves a /usr/bin/zcc that is not its link alone', () => {
    const root = makeRoot('/usr/lib/systemd/system');
    mkdirSync(at(root, 'usr/bin'), { recursive: true });
    writeFileSync(at(root, 'usr/bin/zcc'), 'someone else\n');
    expect(run(AFTER_INSTALL, root, 'configure')).toContain('/usr/bin/zcc exists and is not a link');
    run(AFTER_REMOVE, root, 'remove');
    expect(readFileSync(at(root, 'usr/bin/zcc'), 'utf8')).toBe('someone else\n');
  });
});
