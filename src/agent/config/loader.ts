/**
 * The effective agent configuration: managed > user > defaults per key path, re-read when a
 * source changes (fs.watch on the sources' directories, plus a periodic re-read because
 * watches miss changes on some file systems and across bind mounts).
 *
 * Fail closed: when a source is broken (bad JSON, unknown key, wrong type) the LAST GOOD
 * effective configuration stays in force and `state.lastError` says why, so status and UI can
 * say "using last good configuration". Falling back to defaults instead would silently drop
 * what the administrator enforced. The last good configuration is also kept on disk, so a
 * restart with a broken file does not lose it either.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/log.js';
import { AgentConfig, defaultAgentConfig } from './schema.js';
import { schemaAt } from './schema-walk.js';
import { readSource, type SourceRef } from './sources.js';
import { changedPaths, ConfigFileError, leafPaths, mergeAndValidate, parseKeyPath, setAt, validateLayer, type Plain } from './validate.js';

export interface ConfigErrorInfo {
  file: string;
  message: string;
  /** ISO 8601 time the error was first seen (repeated re-reads of the same error keep it). */
  at: string;
}

export interface ConfigState {
  config: AgentConfig;
  /** Key paths set by the managed source: locked against user changes. */
  managedKeys: string[];
  /** Set while a source is broken; `config` is then the last good configuration. */
  lastError?: ConfigErrorInfo;
}

export interface ConfigChange {
  config: AgentConfig;
  /** Key paths of the effective configuration whose values changed. */
  changedKeys: string[];
  managedKeys: string[];
}

export interface ConfigLoaderOptions {
  /** The administrator's source; null for none. */
  managed?: SourceRef | null;
  userFile: string;
  /** Where the last good configuration is kept; not kept when absent. */
  lastGoodFile?: string;
  /** Periodic re-read; 0 turns it off. */
  pollIntervalMs?: number;
  /** Watch the sources' directories (default true). */
  watch?: boolean;
  log?: Logger;
}

/** Thrown by setUserValue for a key the administrator set. */
export class ManagedKeyError extends Error {
  constructor(
    readonly key: string,
    readonly managedKey: string,
    readonly file: string,
  ) {
    super(`${key}: cannot be changed, ${managedKey} is managed by ${file}`);
    this.name = 'ManagedKeyError';
  }
}

/** Several fs events arrive for one save (truncate, write, rename); one re-read serves them. */
const DEBOUNCE_MS = 25;

export class ConfigLoader extends EventEmitter<{ change: [ConfigChange]; invalid: [ConfigErrorInfo]; valid: [ConfigState] }> {
  private current: ConfigState = { config: defaultAgentConfig(), managedKeys: [] };
  private userRaw: Plain | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private watchers: FSWatcher[] = [];
  private timers: NodeJS.Timeout[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: ConfigLoaderOptions) {
    super();
  }

  get state(): ConfigState {
    return this.current;
  }

  get config(): AgentConfig {
    return this.current.config;
  }

  /** Loads the last good configuration, then the sources, then starts watching. */
  async start(): Promise<ConfigState> {
    await this.loadLastGood();
    await this.reload();
    if (this.opts.watch !== false) this.startWatching();
    const every = this.opts.pollIntervalMs ?? 30_000;
    if (every > 0) this.timers.push(setInterval(() => void this.reload(), every).unref());
    return this.current;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.debounce);
    this.watchers = [];
    this.timers = [];
  }

  /** Re-reads every source; never throws, a broken source becomes `state.lastError`. */
  reload(): Promise<ConfigState> {
    return this.serial(async () => {
      try {
        const managed = this.opts.managed ? await readSource(this.opts.managed) : undefined;
        const user = await readSource({ file: this.opts.userFile, format: 'json' });
        this.apply(managed, user);
      } catch (err) {
        // Timers and watchers call this without awaiting: an unexpected error must not escape.
        this.fail(err instanceof ConfigFileError ? err : new ConfigFileError('(config loader)', `(config loader): ${(err as Error).message}`));
      }
      return this.current;
    });
  }

  /** Whether `key` (or a key inside or around it) is set by the managed source. */
  managedKeyFor(key: string): string | undefined {
    return this.current.managedKeys.find((m) => m === key || m.startsWith(`${key}.`) || key.startsWith(`${m}.`));
  }

  /**
   * Sets (or with undefined, resets) a user value, saves the user file and applies it. Refuses
   * managed keys, unknown keys, invalid values, and any change while a source is broken (the
   * change would be judged against a configuration that is not the real one).
   */
  setUserValue(key: string, value: unknown): Promise<ConfigState> {
    return this.serial(async () => {
      const segs = parseKeyPath(key);
      const managedKey = this.managedKeyFor(key);
      if (managedKey) throw new ManagedKeyError(key, managedKey, this.opts.managed?.file ?? 'the managed configuration');
      if (this.current.lastError) {
        throw new Error(`${key}: cannot be changed while ${this.current.lastError.file} is invalid (using last good configuration)`);
      }
      if (!schemaAt(AgentConfig, segs)) throw new Error(`${key}: unknown key`);
      const user = setAt(this.userRaw ?? {}, segs, value);
      validateLayer(user, this.opts.userFile);
      const managed = this.opts.managed ? await readSource(this.opts.managed) : undefined;
      mergeAndValidate([{ file: this.opts.userFile, raw: user }, { file: this.opts.managed?.file ?? '', raw: managed }]);
      await writeAtomic(this.opts.userFile, `${JSON.stringify(user, null, 2)}\n`);
      this.apply(managed, user);
      return this.current;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private apply(managed: Plain | undefined, user: Plain | undefined): void {
    if (managed) validateLayer(managed, this.opts.managed?.file ?? '');
    if (user) validateLayer(user, this.opts.userFile);
    const config = mergeAndValidate([
      { file: this.opts.userFile, raw: user },
      { file: this.opts.managed?.file ?? '', raw: managed },
    ]);
    const before = this.current;
    this.userRaw = user;
    this.current = { config, managedKeys: leafPaths(managed) };
    const changedKeys = changedPaths(before.config, config);
    if (before.lastError) {
      this.opts.log?.info({ file: before.lastError.file }, 'configuration valid again');
      this.emit('valid', this.current);
    }
    if (changedKeys.length || before.managedKeys.join() !== this.current.managedKeys.join()) {
      this.emit('change', { config, changedKeys, managedKeys: this.current.managedKeys });
    }
    if (this.opts.lastGoodFile && (changedKeys.length || before.lastError)) void this.saveLastGood();
  }

  private fail(err: ConfigFileError): void {
    const prev = this.current.lastError;
    if (prev?.message === err.message) return;
    this.current = { ...this.current, lastError: { file: err.file, message: err.message, at: new Date().toISOString() } };
    // Loudly: this is the moment the administrator's intent and the machine diverge.
    this.opts.log?.error({ file: err.file }, `${err.message}\nusing last good configuration`);
    this.emit('invalid', this.current.lastError as ConfigErrorInfo);
  }

  private async loadLastGood(): Promise<void> {
    if (!this.opts.lastGoodFile) return;
    try {
      const saved = JSON.parse(await readFile(this.opts.lastGoodFile, 'utf8')) as { config?: unknown; managedKeys?: unknown };
      const config = AgentConfig.parse(saved.config);
      const managedKeys = Array.isArray(saved.managedKeys) ? saved.managedKeys.filter((k): k is string => typeof k === 'string') : [];
      this.current = { config, managedKeys };
    } catch (err) {
      // A missing or damaged copy only means there is no fallback beyond the defaults.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log?.warn({ err }, 'ignoring unreadable last good configuration');
    }
  }

  private async saveLastGood(): Promise<void> {
    const file = this.opts.lastGoodFile as string;
    const { config, managedKeys } = this.current;
    try {
      await writeAtomic(file, `${JSON.stringify({ savedAt: new Date().toISOString(), config, managedKeys }, null, 2)}\n`);
    } catch (err) {
      this.opts.log?.warn({ err, file }, 'cannot save last good configuration');
    }
  }

  private startWatching(): void {
    const files = [this.opts.managed?.file, this.opts.userFile].filter((f): f is string => !!f);
    const byDir = new Map<string, Set<string>>();
    for (const f of files) byDir.set(path.dirname(f), (byDir.get(path.dirname(f)) ?? new Set()).add(path.basename(f)));
    for (const [dir, names] of byDir) {
      try {
        // The directory, not the file: editors and MDM agents replace files by rename.
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(name.toString())) this.schedule();
        });
        w.on('error', (err) => this.opts.log?.warn({ err, dir }, 'config watch failed; relying on periodic re-read'));
        this.watchers.push(w);
      } catch (err) {
        // No such directory yet: the periodic re-read picks the source up once it appears.
        this.opts.log?.debug({ err, dir }, 'cannot watch config directory');
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload(), DEBOUNCE_MS);
  }
}

/** Write-then-rename, so a reader (or a crash) never sees half a file. */
async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}
