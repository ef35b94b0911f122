import type { AgentClient } from '../common/localapi-client.js';

/** A value typed on the command line: JSON when it parses (true, 42, ["a"]), else the string. */
export function parseCliValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** `zcc config show [--json]`: the running agent's settings, managed ones marked. */
export async function showSettings(client: AgentClient, json: boolean): Promise<void> {
  const { settings } = await client.request('settings', {});
  if (json) {
    console.log(JSON.stringify(settings, null, 2));
    return;
  }
  const width = Math.max(...settings.map((s) => s.key.length));
  for (const s of settings) console.log(`${s.key.padEnd(width)}  ${JSON.stringify(s.value) ?? '(unset)'}${s.managed ? '  (managed by your administrator)' : ''}`);
}

/** `zcc config set KEY VALUE`: changes a user setting; the agent refuses managed keys. */
export async function setSetting(client: AgentClient, key: string | undefined, value: string | undefined): Promise<void> {
  if (!key || value === undefined) throw new Error('usage: zcc config set KEY VALUE (VALUE as JSON, or a plain string)');
  const out = await client.request('setSetting', { key, value: parseCliValue(value) });
  console.log(`${out.key} = ${JSON.stringify(out.value)}`);
}
