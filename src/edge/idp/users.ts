import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

// Node's default cost (N = 2^14, r = 8, p = 1; about 0.3 s per check on these 2-core machines).
// The demo IdP's passwords sit in its configuration file anyway: hashing at load is about never
// holding or comparing plaintext afterwards, and every login pays the cost once.
const PARAMS = { N: 1 << 14, r: 8, p: 1, maxmem: 64 << 20 } as const;
const KEY_LEN = 32;

export interface DemoUser {
  user: string;
  password: string;
  groups: string[];
}

interface StoredUser {
  user: string;
  salt: Buffer;
  hash: Buffer;
  groups: string[];
}

/**
 * The demo IdP's user directory. Passwords from the configuration are hashed once at load and
 * only the hashes are kept, so nothing compares or holds plaintext after start-up.
 */
export class DemoUserDirectory {
  private constructor(
    private readonly users: Map<string, StoredUser>,
    // A hash of nothing in particular: unknown users cost the same scrypt run as known ones, so
    // timing does not tell which user names exist.
    private readonly decoy: StoredUser,
  ) {}

  static async load(users: readonly DemoUser[]): Promise<DemoUserDirectory> {
    const hashOne = async (user: string, password: string, groups: readonly string[]): Promise<StoredUser> => {
      const salt = randomBytes(16);
      return { user, salt, hash: await scryptAsync(password, salt, KEY_LEN, PARAMS), groups: [...groups] };
    };
    // In parallel: scrypt runs on the libuv thread pool.
    const [decoy, ...stored] = await Promise.all([hashOne('', randomBytes(16).toString('hex'), []), ...users.map((u) => hashOne(u.user, u.password, u.groups))]);
    return new DemoUserDirectory(new Map(stored.map((u) => [u.user.toLowerCase(), u])), decoy!);
  }

  /** The user (as configured) and groups if the password is right; undefined otherwise. */
  async check(user: string, password: string): Promise<{ user: string; groups: string[] } | undefined> {
    const stored = this.users.get(user.toLowerCase());
    const target = stored ?? this.decoy;
    const hash = await scryptAsync(password, target.salt, KEY_LEN, PARAMS);
    if (!timingSafeEqual(hash, target.hash) || !stored) return undefined;
    return { user: stored.user, groups: [...stored.groups] };
  }
}
