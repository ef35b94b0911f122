/**
 * IPv4 CIDR arithmetic for the synthetic pool. Addresses are handled as unsigned 32-bit
 * integers so that allocation and reverse lookups are plain Map operations on numbers.
 */

/** Thrown for a pool CIDR the agent cannot use; the message says why. */
export class InvalidCidrError extends Error {
  constructor(
    readonly input: string,
    readonly why: string,
  ) {
    super(`invalid synthetic pool CIDR ${JSON.stringify(input)}: ${why}`);
    this.name = 'InvalidCidrError';
  }
}

// Narrowest accepted prefix: /30 still leaves two usable hosts once the network and
// broadcast addresses are skipped; anything narrower would exhaust on the second name.
export const MAX_POOL_PREFIX = 30;
// Widest accepted prefix: a /7 or wider would swallow real Internet ranges and make every
// connection look like an app connection.
export const MIN_POOL_PREFIX = 8;

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parse "a.b.c.d" (no leading zeros, which some parsers read as octal) or return null. */
export function parseIpv4(text: string): number | null {
  const m = DOTTED_QUAD.exec(text);
  if (!m) return null;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i] as string;
    if (part.length > 1 && part.startsWith('0')) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.');
}

export interface Ipv4Range {
  /** The CIDR as given, normalised. */
  cidr: string;
  /** First usable address (network + 1). */
  first: number;
  /** Number of usable addresses (network and broadcast excluded). */
  size: number;
}

/** Validate an IPv4 CIDR for use as a synthetic pool. Throws InvalidCidrError. */
export function parsePoolCidr(input: string): Ipv4Range {
  const slash = input.indexOf('/');
  if (slash < 0) throw new InvalidCidrError(input, 'expected a.b.c.d/prefix');
  const network = parseIpv4(input.slice(0, slash));
  if (network === null) throw new InvalidCidrError(input, 'the address is not a dotted-quad IPv4 address');
  const prefixText = input.slice(slash + 1);
  if (!/^\d{1,2}$/.test(prefixText)) throw new InvalidCidrError(input, 'the prefix length is not a number');
  const prefix = Number(prefixText);
  if (prefix > MAX_POOL_PREFIX) {
    throw new InvalidCidrError(input, `network too small: the prefix must be /${MAX_POOL_PREFIX} or shorter`);
  }
  if (prefix < MIN_POOL_PREFIX) {
    throw new InvalidCidrError(input, `network too large: the prefix must be /${MIN_POOL_PREFIX} or longer`);
  }
  const total = 2 ** (32 - prefix);
  // Host bits set ("100.64.1.0/10") is almost always a typo; refusing beats guessing.
  if (network % total !== 0) throw new InvalidCidrError(input, 'host bits are set in the network address');
  return { cidr: `${formatIpv4(network)}/${prefix}`, first: network + 1, size: total - 2 };
}
