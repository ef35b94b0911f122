/**
 * Builds the agent as a Node single-executable application (SEA): out/agent/zcc-agent (the
 * `zcc` CLI, one file, its own Node runtime) plus out/agent/koffi.node and out/agent/zcc-dataplane.
 *
 * Why its own runtime: the tray app's Electron fuses turn RunAsNode off (forge.config.ts,
 * electron-builder.yml), so the privileged agent cannot borrow Electron's Node, and a system
 * service should not depend on whatever `node` the machine happens to have.
 *
 * Steps: esbuild bundles src/cli/main.ts into ONE CommonJS file (Node 20 SEAs run CommonJS only;
 * ESM-only dependencies such as plist are converted by esbuild), `node --experimental-sea-config`
 * turns it into a blob, the blob is injected into a copy of this Node binary with postject.
 * The SEA is built for the platform and architecture it is built on.
 *
 * Run: npx tsx scripts/build-agent-sea.ts [--out DIR]   (npm run build:agent)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { DATAPLANE_BINARY, dataplaneBinary } from '../native/dataplane/dataplane-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const localRequire = createRequire(import.meta.url);

/** The fuse every SEA-capable Node binary carries; postject flips it when it injects the blob. */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Name of koffi's native addon next to the executable. */
export const KOFFI_NATIVE = 'koffi.node';

export interface AgentSeaOptions {
  /** Where zcc-agent and koffi.node go; default out/agent. */
  outDir?: string;
  /** Where the bundle, blob and sea-config.json go; default out/agent-build. */
  workDir?: string;
  /** The Node binary that becomes the agent's runtime; default the one running this script. */
  node?: string;
}

export interface AgentSeaResult {
  executable: string;
  koffiNative: string;
  /** zcc-dataplane next to the executable, or why it could not be built here. */
  dataplane?: string;
  dataplaneSkipped?: string;
  bundle: string;
  bytes: { bundle: number; blob: number; executable: number; koffiNative: number };
  ms: { bundle: number; blob: number; inject: number; total: number };
}

/** Why this machine cannot build the SEA, or undefined when it can. */
export function seaUnsupportedReason(node: string = process.execPath): string | undefined {
  const [major = 0] = process.versions.node.split('.').map(Number);
  if (major < 20) return `Node ${process.versions.node}: SEA blobs need Node >= 20`;
  if (!['linux', 'darwin', 'win32'].includes(process.platform)) return `no SEA support on ${process.platform}`;
  try {
    localRequire.resolve('postject');
  } catch {
    return 'postject is not installed (npm ci installs it as a devDependency)';
  }
  // Distribution builds that link Node as a shared library, or strip the fuse, cannot become SEAs.
  if (!readFileSync(node).includes(SEA_FUSE)) return `${node} has no ${SEA_FUSE} sentinel (built without SEA support)`;
  return undefined;
}

/** koffi's addon for this platform: the file koffi itself loads when required here. */
function hostKoffiNative(): string {
  localRequire('koffi');
  const loaded = Object.keys(localRequire.cache).find((f) => f.endsWith(`${path.sep}${KOFFI_NATIVE}`) && f.includes(`${path.sep}koffi${path.sep}`));
  if (!loaded) throw new Error('could not find the koffi.node koffi loaded on this machine');
  return loaded;
}

/**
 * esbuild plugins that make the CLI embeddable.
 *
 * koffi: a native addon cannot be embedded in a SEA, and `require` inside a SEA's main script
 * loads built-in modules only. koffi's own index.js picks its addon with
 * `require("./build/koffi/<triplet>/koffi.node")`; every such require is redirected to
 * koffi.node next to the executable, loaded through `createRequire(process.execPath)`, which
 * does load addons. koffi's JavaScript stays in the bundle, with its version check against the
 * addon, so native/*.ts keep `import koffi from 'koffi'` unchanged. Any other native addon fails
 * the build instead of failing at run time.
 *
 * esbuild and scripts/build-renderer.ts: `zcc demo` builds its browser UI from the source tree
 * at run time (src/cli/web-ui.ts), and build-renderer.ts has top-level await, which CommonJS
 * cannot have. Neither belongs in the installed agent (the tray app is the UI there); they are
 * replaced by stubs that fail with an explanation if reached (`zcc demo` without --headless).
 */
function embedPlugin(): esbuild.Plugin {
  const notInAgent = (what: string): string =>
    `const fail = () => { throw new Error(${JSON.stringify(`${what} is not part of the zcc-agent binary; run it from a source checkout (node bin/zcc)`)}); };`;
  return {
    name: 'zcc-sea-embed',
    setup(build) {
      build.onResolve({ filter: /\.node$/ }, (args) => {
        if (!/[\\/]node_modules[\\/]koffi[\\/]/.test(args.importer)) {
          return { errors: [{ text: `native addon ${args.path} (from ${args.importer}) cannot be embedded in the SEA` }] };
        }
        return { path: KOFFI_NATIVE, namespace: 'zcc-koffi-native' };
      });
      build.onLoad({ filter: /.*/, namespace: 'zcc-koffi-native' }, () => ({
        loader: 'js',
        contents: [
          `const path = require('node:path');`,
          `const { createRequire } = require('node:module');`,
          `module.exports = createRequire(process.execPath)(path.join(path.dirname(process.execPath), ${JSON.stringify(KOFFI_NATIVE)}));`,
        ].join('\n'),
      }));
      build.onResolve({ filter: /^esbuild$/ }, () => ({ path: 'esbuild', namespace: 'zcc-stub' }));
      build.onResolve({ filter: /[\\/]scripts[\\/]build-renderer\.js$/ }, () => ({ path: 'build-renderer', namespace: 'zcc-stub' }));
      build.onLoad({ filter: /^esbuild$/, namespace: 'zcc-stub' }, () => ({
        loader: 'js',
        contents: `${notInAgent('the web UI bundler (esbuild)')}\nmodule.exports = { build: fail, context: fail, transform: fail };`,
      }));
      build.onLoad({ filter: /^build-renderer$/, namespace: 'zcc-stub' }, () => ({
        loader: 'js',
        contents: [
          notInAgent('the browser UI of zcc demo'),
          // No source tree around the installed binary: ui-launch then finds no Electron here.
          `exports.PROJECT_ROOT = require('node:path').dirname(process.execPath);`,
          `exports.buildRenderer = fail;`,
          `exports.buildPreload = fail;`,
        ].join('\n'),
      }));
    },
  };
}

/**
 * How the agent's code is bundled for the SEA: one CommonJS file with the packages inside. The
 * path benchmark bundles its agent the same way (bench/bundle.ts), so it measures what ships.
 */
export const SEA_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: `node${process.versions.node.split('.')[0]}`,
  legalComments: 'none',
  // Whitespace, comments and syntax only; names stay, so stack traces still name functions.
  // The bundle goes from 4.3 to 2.9 MB, and V8 keeps all of it as the script's source: the
  // idle agent measured 88 MB resident instead of 92.6, `zcc` alone 71 instead of 75.
  minifyWhitespace: true,
  minifySyntax: true,
} as const satisfies esbuild.BuildOptions;

/** Bundles the CLI into one CommonJS file; returns its size. */
export async function bundleAgent(outfile: string): Promise<number> {
  const result = await esbuild.build({
    ...SEA_BUNDLE_OPTIONS,
    absWorkingDir: ROOT,
    entryPoints: [path.join(ROOT, 'src', 'cli', 'main.ts')],
    outfile,
    tsconfig: path.join(ROOT, 'tsconfig.build.json'),
    plugins: [embedPlugin()],
    // CommonJS has no import.meta: esbuild would leave it empty and the binary would break at
    // run time. Fail the build instead so that new uses are dealt with here.
    logOverride: { 'empty-import-meta': 'error' },
    logLevel: 'silent',
    metafile: true,
  });
  if (result.warnings.length) {
    const text = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
    process.stderr.write(text.join(''));
  }
  return statSync(outfile).size;
}

export async function buildAgentSea(opts: AgentSeaOptions = {}): Promise<AgentSeaResult> {
  const t0 = performance.now();
  const node = opts.node ?? process.execPath;
  const why = seaUnsupportedReason(node);
  if (why) throw new Error(`cannot build the agent SEA: ${why}`);
  const outDir = path.resolve(opts.outDir ?? path.join(ROOT, 'out', 'agent'));
  const workDir = path.resolve(opts.workDir ?? path.join(ROOT, 'out', 'agent-build'));
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  mkdirSync(outDir, { recursive: true });

  const bundle = path.join(workDir, 'zcc-agent.cjs');
  const bundleBytes = await bundleAgent(bundle);
  const t1 = performance.now();

  const blob = path.join(workDir, 'zcc-agent.blob');
  const seaConfig = path.join(workDir, 'sea-config.json');
  // No code cache: V8 rejects a cache compiled under other flags than the run's, with a warning
  // on stderr, and the service runs the agent with NODE_OPTIONS (resources/systemd) while the
  // CLI runs without. Compiling at start instead measured +80 ms (0.13 -> 0.21 s for `zcc`).
  writeFileSync(seaConfig, `${JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }, null, 2)}\n`);
  const blobbed = spawnSync(node, ['--experimental-sea-config', seaConfig], { cwd: workDir, encoding: 'utf8' });
  if (blobbed.status !== 0) throw new Error(`node --experimental-sea-config failed (${blobbed.status ?? blobbed.signal}):\n${blobbed.stdout}${blobbed.stderr}`);
  const t2 = performance.now();

  const executable = path.join(outDir, process.platform === 'win32' ? 'zcc-agent.exe' : 'zcc-agent');
  rmSync(executable, { force: true });
  copyFileSync(node, executable);
  chmodSync(executable, 0o755);
  if (process.platform === 'darwin') execFileSync('codesign', ['--remove-signature', executable]);
  // postject's CLI in a child: its LIEF core prints "Can't find string offset for section name
  // '.note.100'" for Node's ELF notes (harmless, nodejs/postject#83); the output is shown only on
  // failure.
  const postject = path.join(path.dirname(localRequire.resolve('postject/package.json')), 'dist', 'cli.js');
  const args = [postject, executable, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE];
  if (process.platform === 'darwin') args.push('--macho-segment-name', 'NODE_SEA');
  const injected = spawnSync(node, args, { encoding: 'utf8' });
  if (injected.status !== 0) throw new Error(`postject failed (${injected.status ?? injected.signal}):\n${injected.stdout}${injected.stderr}`);
  // Ad-hoc signature on macOS (postject invalidated the original); a release signs it again.
  if (process.platform === 'darwin') execFileSync('codesign', ['--sign', '-', executable]);
  const t3 = performance.now();

  const koffiNative = path.join(outDir, KOFFI_NATIVE);
  copyFileSync(hostKoffiNative(), koffiNative);
  // The native data plane, next to the executable where the agent looks first; without a C
  // compiler here the agent runs without it (dataPlane auto falls back to Node).
  let dataplane: string | undefined;
  let dataplaneSkipped: string | undefined;
  try {
    const built = dataplaneBinary();
    dataplane = path.join(outDir, DATAPLANE_BINARY);
    copyFileSync(built, dataplane);
    chmodSync(dataplane, 0o755);
  } catch (err) {
    dataplaneSkipped = (err as Error).message;
  }
  return {
    executable,
    koffiNative,
    ...(dataplane ? { dataplane } : { dataplaneSkipped }),
    bundle,
    bytes: { bundle: bundleBytes, blob: statSync(blob).size, executable: statSync(executable).size, koffiNative: statSync(koffiNative).size },
    ms: { bundle: t1 - t0, blob: t2 - t1, inject: t3 - t2, total: performance.now() - t0 },
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const i = process.argv.indexOf('--out');
  const r = await buildAgentSea(i > 0 ? { outDir: process.argv[i + 1] } : {});
  const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
  const rel = (f: string): string => (existsSync(f) ? path.relative(ROOT, f) : f);
  process.stdout.write(
    `built ${rel(r.executable)} (${mib(r.bytes.executable)}; bundle ${mib(r.bytes.bundle)}, blob ${mib(r.bytes.blob)}) and ${rel(r.koffiNative)} (${mib(r.bytes.koffiNative)})\n` +
      `  bundle ${Math.round(r.ms.bundle)} ms, blob ${Math.round(r.ms.blob)} ms, inject ${Math.round(r.ms.inject)} ms, total ${Math.round(r.ms.total)} ms\n` +
      (r.dataplane ? `  and ${rel(r.dataplane)}\n` : `  without zcc-dataplane (the agent will carry intercepted TCP in Node): ${r.dataplaneSkipped}\n`),
  );
}
