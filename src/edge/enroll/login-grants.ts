import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** An opaque secret: 256 random bits, base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Secrets handed out by the login flow (pending logins, codes, tickets), each redeemable once
 * and only until it expires. Keys are stored as SHA-256 hashes so that a memory dump or a stray
 * debug print of the map does not yield a usable secret.
 */
export class OneTimeStore<T> {
  private readonly items = new Map<string, { value: T; expiresAt: number }>();

  constructor(
    readonly ttlMs: number,
    /** Outstanding entries beyond this are refused: a flood of /start calls cannot grow memory without bound. */
    private readonly maxEntries = 10_000,
  ) {}

  /** Stores `value` under a fresh secret and returns the secret with its expiry. */
  issue(value: T): { secret: string; expiresAt: number } {
    this.prune();
    if (this.items.size >= this.maxEntries) throw new Error('too many logins in progress');
    const secret = newSecret();
    const expiresAt = Date.now() + this.ttlMs;
    this.items.set(hashOf(secret), { value, expiresAt });
    return { secret, expiresAt };
  }

  /** Removes and returns the value if the secret is known and unexpired: a second call gets nothing. */
  take(secret: string): T | undefined {
    const key = hashOf(secret);
    const item = this.items.get(key);
    this.items.delete(key);
    if (!item || item.expiresAt <= Date.now()) return undefined;
    return item.value;
  }

  get size(): number {
    this.prune();
    return this.items.size;
  }

  private prune(): void {
    const now = Date.now();
    for (const [k, v] of this.items) if (v.expiresAt <= now) this.items.delete(k);
  }
}

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier))) compared in constant time. */
export function pkceMatches(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(verifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

/**
 * RFC 8252 §7.3: the redirect must be a loopback IP literal over plain HTTP with a port (the
 * agent's one-shot listener). "localhost" is refused as §8.3 advises — it can resolve elsewhere —
 * and so is everything else, which is what keeps a code from being sent off the device.
 */
export function checkLoopbackRedirect(redirect: string): string | undefined {
  let u: URL;
  try {
    u = new URL(redirect);
  } catch {
    return 'redirect is not a URL';
  }
  if (u.protocol !== 'http:') return 'redirect must use http on a loopback address';
  if (u.hostname !== '127.0.0.1' && u.hostname !== '[::1]') return 'redirect must be a loopback IP literal (127.0.0.1 or [::1])';
  if (!u.port) return 'redirect must name the port of the agent listener';
  if (u.username || u.password || u.hash || u.search) return 'redirect must not carry credentials, a query or a fragment';
  return undefined;
}
