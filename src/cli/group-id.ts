import { readFile } from 'node:fs/promises';

/** A group name or numeric gid → gid, from /etc/group (the local API's operator group). */
export async function groupId(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new Error(`operator group ${JSON.stringify(group)} does not exist`);
}
