// Revoked certificate serials of one tenant ("delete certificate ≡ revoke"). Checked by the
// edge after the TLS handshake, since clients and connectors do not fetch CRLs.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { PkiError } from '../../protocol/pki.js';
import { writeFileAtomic } from './atomic-file.js';
import { normalizeSerial } from './authority.js';

const RevocationFile = z.object({
  format: z.literal('zcc-revocations'),
  version: z.literal(1),
  tenantId: z.string(),
  /** normalized serial -> ISO time of revocation */
  revoked: z.record(z.string(), z.string()),
});
type RevocationFile = z.infer<typeof RevocationFile>;

export interface RevocationList {
  readonly tenantId: string;
  /** Accepts any hex spelling (Node's upper case, colons, leading zeros). Idempotent. */
  revoke(serial: string): Promise<void>;
  isRevoked(serial: string): boolean;
  /** Normalized serials with their revocation time. */
  entries(): Array<{ serial: string; revokedAt: Date }>;
}

class FileRevocationList implements RevocationList {
  /** Serializes writes so a later snapshot never lands before an earlier one. */
  private writes: Promise<void> = Promise.resolve();
  /** In-memory revocations not yet known to be on disk. */
  private dirty = false;

  constructor(
    readonly tenantId: string,
    private readonly file: string,
    private readonly revoked: Map<string, string>,
  ) {}

  isRevoked(serial: string): boolean {
    return this.revoked.has(normalizeSerial(serial));
  }

  entries(): Array<{ serial: string; revokedAt: Date }> {
    return [...this.revoked].map(([serial, at]) => ({ serial, revokedAt: new Date(at) }));
  }

  async revoke(serial: string): Promise<void> {
    const normalized = normalizeSerial(serial);
    if (!this.revoked.has(normalized)) {
      // Effective in memory at once, even if persisting fails below: a disk error must not
      // leave a revoked certificate usable.
      this.revoked.set(normalized, new Date().toISOString());
      this.dirty = true;
    }
    // Also retries a snapshot that an earlier call failed to write.
    const write = this.writes.catch(() => undefined).then(() => (this.dirty ? this.persist() : undefined));
    this.writes = write;
    return write;
  }

  private async persist(): Promise<void> {
    const content: RevocationFile = {
      format: 'zcc-revocations',
      version: 1,
      tenantId: this.tenantId,
      revoked: Object.fromEntries(this.revoked),
    };
    this.dirty = false;
    try {
      await mkdir(dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, JSON.stringify(content, null, 2) + '\n', 0o600);
    } catch (error) {
      this.dirty = true;
      throw error;
    }
  }
}

/** Opens (or starts, if `file` does not exist yet) the revocation list of `tenantId`. */
export async function openRevocationList(file: string, tenantId: string): Promise<RevocationList> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new FileRevocationList(tenantId, file, new Map());
    throw error;
  }
  let parsed: RevocationFile;
  try {
    parsed = RevocationFile.parse(JSON.parse(text));
  } catch (cause) {
    throw new PkiError('revocation-store-corrupt', `revocation list ${file} is unreadable`, { cause });
  }
  if (parsed.tenantId !== tenantId) {
    throw new PkiError('store-mismatch', `revocation list ${file} belongs to tenant ${parsed.tenantId}, not ${tenantId}`);
  }
  const revoked = new Map<string, string>();
  for (const [serial, at] of Object.entries(parsed.revoked)) {
    try {
      revoked.set(normalizeSerial(serial), at);
    } catch (cause) {
      throw new PkiError('revocation-store-corrupt', `revocation list ${file} holds an invalid serial`, { cause });
    }
  }
  return new FileRevocationList(tenantId, file, revoked);
}
