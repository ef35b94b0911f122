import { readFile } from 'node:fs/promises';

/**
 * The resolvers the OS uses, read from resolv.conf: where names that are not apps go. Loopback
 * stub resolvers (systemd-resolved's 127.0.0.53) are kept — they are the OS's resolver too.
 */
export async function systemResolvers(file = '/etc/resolv.conf'): Promise<string[]> {
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((ip): ip is string => !!ip)
    .map((ip) => (ip.includes(':') ? `[${ip}]:53` : ip));
}
