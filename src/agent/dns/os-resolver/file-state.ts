import { randomBytes } from 'node:crypto';
import { lstat, open, readFile, readlink, rename, symlink, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Exactly what is at a path (content + mode + owner, or a symlink and its target, or nothing),
 * so it can be put back byte for byte, and atomic replacement of that path.
 */

export type FileState =
  | { kind: 'file'; contentBase64: string; mode: number; uid: number; gid: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'missing' };

export async function snapshot(path: string): Promise<FileState> {
  try {
    const st = await lstat(path);
    if (st.isSymbolicLink()) return { kind: 'symlink', target: await readlink(path) };
    const content = await readFile(path);
    return { kind: 'file', contentBase64: content.toString('base64'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw e;
  }
}

/** The text a resolver would read at the path (through a symlink); '' when there is none. */
export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

function tmpPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.zcc-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** rename() cannot replace a mount point: /etc/resolv.conf is a bind mount in containers. */
const IN_PLACE_CODES = new Set(['EBUSY', 'EXDEV']);
/** No temporary file can be made beside the path. */
const NO_TMP_CODES = new Set(['EROFS', 'EACCES', 'EPERM']);

export interface WriteOptions {
  mode: number;
  uid?: number;
  gid?: number;
}

/**
 * Replace `path` with `data` so a reader sees the old or the new file, never half of one:
 * write a temporary file beside it, fsync, rename. Where the path is a mount point (the
 * rename fails) or its directory is read-only, the file is rewritten in place instead: not
 * atomic, but the only option there.
 */
export async function writeFileAtomic(path: string, data: Buffer | string, opts: WriteOptions): Promise<'atomic' | 'in-place'> {
  const tmp = tmpPath(path);
  let fh;
  try {
    fh = await open(tmp, 'wx', opts.mode);
  } catch (e) {
    // A read-only directory with a writable file in it: systemd's ProtectSystem=strict with
    // ReadWritePaths=/etc/resolv.conf. Only an in-place write is possible there.
    if (!NO_TMP_CODES.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
    await writeInPlace(path, data, opts);
    return 'in-place';
  }
  try {
    await fh.writeFile(data);
    await fh.chmod(opts.mode); // open()'s mode is filtered by the umask
    if (opts.uid !== undefined && opts.gid !== undefined) await fh.chown(opts.uid, opts.gid);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
    return 'atomic';
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    if (!IN_PLACE_CODES.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
  }
  await writeInPlace(path, data, opts);
  return 'in-place';
}

async function writeInPlace(path: string, data: Buffer | string, opts: WriteOptions): Promise<void> {
  const target = await open(path, 'w');
  try {
    await target.writeFile(data);
    await target.chmod(opts.mode);
    if (opts.uid !== undefined && opts.gid !== undefined) await target.chown(opts.uid, opts.gid);
    await target.sync();
  } finally {
    await target.close();
  }
}

/** Put back what snapshot() saw. */
export async function restoreState(path: string, state: FileState): Promise<void> {
  if (state.kind === 'file') {
    await writeFileAtomic(path, Buffer.from(state.contentBase64, 'base64'), { mode: state.mode, uid: state.uid, gid: state.gid });
  } else if (state.kind === 'symlink') {
    const tmp = tmpPath(path);
    await symlink(state.target, tmp);
    try {
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  } else {
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}
