// Files sealed to this device: AES-256-GCM under a key derived (HKDF-SHA256) from the device
// fingerprint and a random per-install salt. A state dir copied to another device cannot be
// opened there, because that device derives another key.
//
// What it protects against: the state being used on another machine (a copied disk, a backup
// restored elsewhere, a copied client). Not against someone who can already read both this
// directory (0700, root when the agent runs as root) and this machine's identity: the
// fingerprint's inputs are readable on the machine itself. Local secrecy is the file modes' job.
//
// Sealed file format, version 1 (all of it authenticated):
//   "ZCSE" | version (1 byte) | key id (16) | nonce (12) | ciphertext | GCM tag (16)
// AAD = the header (magic, version, key id) + "file=<name>" + "tenant=<context>", so a file
// renamed to another entry or moved to another tenant fails to open. The key id is a separate
// HKDF output: it tells "sealed on another device" apart from "damaged", and says nothing of
// the key itself.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, lstat, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

const MAGIC = Buffer.from('ZCSE');
const VERSION = 1;
const KEY_ID_LENGTH = 16;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const HEADER_LENGTH = MAGIC.length + 1 + KEY_ID_LENGTH;
const SALT_MAGIC = Buffer.from('ZCSA');
const SALT_LENGTH = 32;
export const SALT_FILE = 'install.salt';
export const SEALED_SUFFIX = '.sealed';
const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export type SealedStateErrorCode = 'other-device' | 'corrupt' | 'bad-name' | 'not-a-directory';

export class SealedStateError extends Error {
  override readonly name = 'SealedStateError';
  constructor(
    readonly code: SealedStateErrorCode,
    message: string,
    /** The file at fault, when there is one. */
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface SealedStore {
  readonly dir: string;
  /** Names of the sealed entries present, sorted. */
  list(): Promise<string[]>;
  /** The plaintext of entry `name` sealed for `context`, or undefined if there is none. */
  read(name: string, context: string): Promise<Buffer | undefined>;
  /** Seals and atomically replaces entry `name`. */
  write(name: string, context: string, data: Uint8Array): Promise<void>;
  /** Removes entry `name`; false if it did not exist. */
  remove(name: string): Promise<boolean>;
}

interface Keys {
  key: Buffer;
  keyId: Buffer;
}

function deriveKeys(fingerprint: string, salt: Buffer): Keys {
  const ikm = Buffer.from(fingerprint, 'utf8');
  const derive = (info: string, length: number): Buffer => Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
  return { key: derive('zcc agent state v1 AES-256-GCM key', 32), keyId: derive('zcc agent state v1 key id', KEY_ID_LENGTH) };
}

function otherDevice(dir: string, file: string): SealedStateError {
  return new SealedStateError(
    'other-device',
    `agent state ${dir} was enrolled on another device — enroll again (${file} is sealed to a different device fingerprint)`,
    file,
  );
}

function aadFor(header: Buffer, name: string, context: string): Buffer {
  return Buffer.concat([header, Buffer.from(`\0file=${name}${SEALED_SUFFIX}\0tenant=${context}\0`, 'utf8')]);
}

/** Splits a sealed file into its parts; the key id is compared before any decryption. */
function parseSealed(bytes: Buffer, file: string, keys: Keys, dir: string): { header: Buffer; nonce: Buffer; body: Buffer; tag: Buffer } {
  if (bytes.length < HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SealedStateError('corrupt', `${file} is corrupt: not a zcc sealed file`, file);
  }
  const version = bytes[MAGIC.length];
  if (version !== VERSION) throw new SealedStateError('corrupt', `${file} is corrupt or newer than this agent: sealed format version ${version}`, file);
  const header = bytes.subarray(0, HEADER_LENGTH);
  const keyId = header.subarray(MAGIC.length + 1);
  if (!timingSafeEqual(keyId, keys.keyId)) throw otherDevice(dir, file);
  return {
    header,
    nonce: bytes.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH),
    body: bytes.subarray(HEADER_LENGTH + NONCE_LENGTH, bytes.length - TAG_LENGTH),
    tag: bytes.subarray(bytes.length - TAG_LENGTH),
  };
}

function seal(keys: Keys, name: string, context: string, plaintext: Uint8Array): Buffer {
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), keys.keyId]);
  const nonce = randomBytes(NONCE_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', keys.key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aadFor(header, name, context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, nonce, body, cipher.getAuthTag()]);
}

function unseal(keys: Keys, dir: string, name: string, context: string, bytes: Buffer): Buffer {
  const file = join(dir, name + SEALED_SUFFIX);
  const { header, nonce, body, tag } = parseSealed(bytes, file, keys, dir);
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.key, nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(aadFor(header, name, context));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (cause) {
    // Right key (the key id matched), so the bytes or their name/tenant binding were altered.
    throw new SealedStateError('corrupt', `${file} is corrupt: it does not authenticate (damaged, or moved from another entry or tenant)`, file, { cause });
  }
}

async function fsyncPath(path: string): Promise<void> {
  // Makes a rename durable. Not every platform can fsync a directory; the data is safe already.
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

/** Temp file (0600 from creation, fsynced) then rename: readers see old or new, never a mix. */
async function writeAtomic(dir: string, fileName: string, data: Uint8Array): Promise<void> {
  const temp = join(dir, `.${fileName}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', FILE_MODE);
    try {
      // A umask can only narrow 0600; exactly 0600 keeps the file readable by the agent itself.
      await handle.chmod(FILE_MODE);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(dir, fileName));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncPath(dir);
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseSalt(bytes: Buffer, file: string): Buffer {
  if (bytes.length !== SALT_MAGIC.length + 1 + SALT_LENGTH || !bytes.subarray(0, SALT_MAGIC.length).equals(SALT_MAGIC) || bytes[SALT_MAGIC.length] !== VERSION) {
    throw new SealedStateError('corrupt', `${file} is corrupt: not a zcc install salt`, file);
  }
  return bytes.subarray(SALT_MAGIC.length + 1);
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new SealedStateError('bad-name', `invalid sealed entry name ${JSON.stringify(name)}`);
}

async function sealedNames(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith(SEALED_SUFFIX) && NAME.test(f.slice(0, -SEALED_SUFFIX.length)))
    .map((f) => f.slice(0, -SEALED_SUFFIX.length))
    .sort();
}

/**
 * Opens (creating it 0700 with a fresh salt if absent) a directory of sealed files. Every sealed
 * file's key id is checked first: a directory from another device, or one whose salt is gone or
 * damaged, is refused before anything in it is touched.
 */
export async function openSealedStore(dir: string, fingerprint: string): Promise<SealedStore> {
  if (fingerprint.length === 0) throw new Error('openSealedStore: empty device fingerprint');
  const saltFile = join(dir, SALT_FILE);
  let existed = true;
  try {
    if (!(await lstat(dir)).isDirectory()) throw new SealedStateError('not-a-directory', `agent state ${dir} is not a directory`, dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    existed = false;
  }
  let salt: Buffer;
  const saltBytes = existed ? await readIfExists(saltFile) : undefined;
  if (saltBytes) {
    salt = parseSalt(saltBytes, saltFile);
  } else {
    const names = existed ? await sealedNames(dir) : [];
    if (names.length > 0) {
      const file = join(dir, names[0] + SEALED_SUFFIX);
      throw new SealedStateError('corrupt', `${saltFile} is missing, so ${file} and the other sealed files cannot be opened: enroll again`, saltFile);
    }
    // Nothing sealed yet: a new install (or an empty dir) gets its salt now.
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    await chmod(dir, DIR_MODE);
    salt = randomBytes(SALT_LENGTH);
    await writeAtomic(dir, SALT_FILE, Buffer.concat([SALT_MAGIC, Buffer.from([VERSION]), salt]));
  }
  const keys = deriveKeys(fingerprint, salt);
  for (const name of await sealedNames(dir)) {
    const file = join(dir, name + SEALED_SUFFIX);
    const bytes = await readFile(file);
    parseSealed(bytes, file, keys, dir);
  }
  // Only once the directory is known to be ours: tighten a mode someone widened.
  if (((await lstat(dir)).mode & 0o777) !== DIR_MODE) await chmod(dir, DIR_MODE);

  return {
    dir,
    list: () => sealedNames(dir),
    async read(name, context) {
      checkName(name);
      const bytes = await readIfExists(join(dir, name + SEALED_SUFFIX));
      return bytes && unseal(keys, dir, name, context, bytes);
    },
    async write(name, context, data) {
      checkName(name);
      await writeAtomic(dir, name + SEALED_SUFFIX, seal(keys, name, context, data));
    },
    async remove(name) {
      checkName(name);
      try {
        await rm(join(dir, name + SEALED_SUFFIX));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw error;
      }
      await fsyncPath(dir);
      return true;
    },
  };
}
