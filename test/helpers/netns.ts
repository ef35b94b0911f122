// Running a command as if on another machine or network: Linux namespaces via `unshare`, with
// bind mounts that exist only inside them (FIELD-NOTES: `unshare -m` with a bind-mounted
// /etc/machine-id gives a process another machine identity). Needs root; callers skip with the
// reason `namespaceSupport()` gives, never pass silently.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

export type NamespaceKind = 'mount' | 'net';

const FLAGS: Record<NamespaceKind, string> = { mount: '-m', net: '-n' };

/** Machine-id files node-machine-id and systemd read; each present one is replaced. */
export const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'] as const;

const probed = new Map<string, { ok: true } | { ok: false; reason: string }>();

/** Whether this process may create these namespaces, and if not, why (for a skip message). */
export function namespaceSupport(kinds: NamespaceKind[] = ['mount']): { ok: true } | { ok: false; reason: string } {
  const key = [...kinds].sort().join(',');
  const known = probed.get(key);
  if (known) return known;
  let result: { ok: true } | { ok: false; reason: string };
  if (process.platform !== 'linux') result = { ok: false, reason: `namespaces need Linux, this is ${process.platform}` };
  else if (process.getuid?.() !== 0) result = { ok: false, reason: 'namespaces and bind mounts need root' };
  else {
    const r = spawnSync('unshare', [...kinds.map((k) => FLAGS[k]), '--', 'true'], { encoding: 'utf8', timeout: 10_000 });
    result = r.error
      ? { ok: false, reason: `cannot run unshare: ${r.error.message}` }
      : r.status === 0
        ? { ok: true }
        : { ok: false, reason: `unshare ${kinds.join(' ')} failed: ${r.stderr.trim() || `exit ${r.status}`}` };
  }
  probed.set(key, result);
  return result;
}

export interface NamespaceRun {
  /** Namespaces to enter (a new mount namespace is always one: binds must not leak out). */
  namespaces?: NamespaceKind[];
  /** Files or directories mounted over `target` inside the namespace only. */
  binds?: Array<{ source: string; target: string }>;
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `command` in new namespaces. unshare makes the new mount namespace's propagation
 * private, so the binds never reach the host. In a new network namespace only `lo` exists; it
 * is brought up.
 */
export function runInNamespace(run: NamespaceRun): Promise<RunResult> {
  const kinds = new Set<NamespaceKind>(['mount', ...(run.namespaces ?? [])]);
  const setup = [
    'set -e',
    ...(run.binds ?? []).map((b) => `mount --bind ${shellQuote(b.source)} ${shellQuote(b.target)}`),
    ...(kinds.has('net') ? ['ip link set lo up'] : []),
    `exec ${[run.command, ...(run.args ?? [])].map(shellQuote).join(' ')}`,
  ].join('\n');
  const child = spawn('unshare', [...[...kinds].map((k) => FLAGS[k]), '--propagation', 'private', '--', 'sh', '-c', setup], {
    cwd: run.cwd,
    env: { ...process.env, ...run.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), run.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs `command` as if on another machine: every machine-id file present is replaced (inside a
 * private mount namespace only) by `machineId`.
 */
export async function runAsOtherMachine(machineId: string, run: Omit<NamespaceRun, 'binds'>): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'zcc-machine-id-'));
  try {
    const file = join(dir, 'machine-id');
    await writeFile(file, `${machineId}\n`, { mode: 0o444 });
    const binds = MACHINE_ID_FILES.filter((t) => existsSync(t)).map((target) => ({ source: file, target }));
    return await runInNamespace({ ...run, binds });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** path → "mode sha256 mtime" of every file and directory under `dir`: compare before/after. */
export async function snapshotDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    const st = await stat(d);
    out[relative(dir, d) || '.'] = `dir ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`;
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else {
        const fst = await stat(p);
        const hash = createHash('sha256').update(await readFile(p)).digest('hex');
        out[relative(dir, p)] = `${(fst.mode & 0o7777).toString(8)} ${hash} ${fst.mtimeMs}`;
      }
    }
  };
  await walk(dir);
  return out;
}
