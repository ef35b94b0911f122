// Shared by the config tests: temp directories and the configuration the fixtures describe.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

export const DR_PUBLIC_KEY_B64 = 'MCowBQYDK2VwAyEACO7tSE3T8zQoo4h0Oknlxy2R1CzryVwlzsAyXdXXWcc=';

/** The layer every managed fixture (plist, .reg, registry JSON dump) describes. */
export const FIXTURE_LAYER = {
  tenants: [
    {
      id: 'acme',
      name: 'Acme Corp',
      cloud: {
        edge: 'edge.acme.example:443',
        enroll: 'enroll.acme.example:8443',
        serverName: 'edge.acme.example',
        caFile: '/Library/Application Support/zcc/acme-ca.pem',
      },
      forwardingProfile: 'untrusted-only',
    },
  ],
  dns: { searchDomains: ['corp.acme.example'], domainValidation: true },
  dr: { domain: 'dr.acme.example', publicKey: DR_PUBLIC_KEY_B64, pollIntervalSeconds: 120 },
  ui: { hiddenMenuItems: ['quit'] },
};

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zcc-config-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
