// The agent's per-tenant state on disk: key, certificate chain, tokens and cached config, each
// tenant in its own file sealed to this device (see sealed-store.ts for the format).
import { join } from 'node:path';
import { z } from 'zod';
import type { TlsIdentity } from '../../protocol/tls.js';
import { deviceFingerprint } from './fingerprint.js';
import { openSealedStore, SEALED_SUFFIX, SealedStateError, type SealedStore } from './sealed-store.js';

export { SealedStateError, type SealedStateErrorCode } from './sealed-store.js';

/** Same rule as the cloud's tenant ids; also keeps the file name safe. */
export const TenantId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'tenant id: lower-case letters, digits and dashes');

const Pem = (label: string) => z.string().min(1).max(64 * 1024).refine((s) => s.includes(`-----BEGIN ${label}-----`), `expected a PEM ${label}`);

/** One tenant's enrollment as the agent keeps it. */
export const TenantRecord = z.object({
  tenant: TenantId,
  /** Display name of the organisation. */
  name: z.string().min(1).max(256),
  /** Service edge HOST:PORT. */
  edge: z.string().min(1).max(300),
  /** Enrollment service HOST:PORT; certificate renewal goes there. */
  enroll: z.string().min(1).max(300).optional(),
  /** Name the edge's and enrollment service's certificates are checked against. */
  serverName: z.string().min(1).max(253),
  /** The cloud's infrastructure CA, pinned. */
  caPem: Pem('CERTIFICATE'),
  /** PKCS#8 private key generated on this device; never leaves it. */
  keyPem: Pem('PRIVATE KEY'),
  /** Leaf followed by the issuing sub-CA. */
  certChainPem: Pem('CERTIFICATE'),
  identityUri: z.string().max(2048).optional(),
  enrolledAt: z.string().datetime(),
  renewedAt: z.string().datetime().optional(),
  /** Login tickets and tokens by purpose (e.g. a broker-issued auth token). */
  tokens: z.record(z.string().max(64), z.string().max(16 * 1024)).default({}),
  /** The last configuration the edge sent (segments etc.), to start before it answers again. */
  config: z.unknown().optional(),
});
export type TenantRecord = z.infer<typeof TenantRecord>;
export type TenantRecordInput = z.input<typeof TenantRecord>;

export interface AgentState {
  readonly dir: string;
  /** Ids of the tenants enrolled, sorted. */
  listTenants(): Promise<string[]>;
  /** The tenant's record, or undefined if it is not enrolled. */
  readTenant(id: string): Promise<TenantRecord | undefined>;
  /** Validates and atomically replaces the tenant's record; returns it as stored. */
  writeTenant(id: string, data: TenantRecordInput): Promise<TenantRecord>;
  /** Forgets the tenant; false if it was not enrolled. */
  removeTenant(id: string): Promise<boolean>;
  /** The agent's own sealed entries (not a tenant's): e.g. the DR segment cache. */
  readEntry(name: AgentEntry): Promise<unknown>;
  writeEntry(name: AgentEntry, value: unknown): Promise<void>;
}

export type AgentEntry = 'dr-cache';
const ENTRY_PREFIX = 'agent-';

export interface AgentStateOptions {
  /** This device's fingerprint; read from the machine when not given. */
  fingerprint?: string;
}

const PREFIX = 'tenant-';

function tenantId(id: string): string {
  const parsed = TenantId.safeParse(id);
  if (!parsed.success) throw new SealedStateError('bad-name', `invalid tenant id ${JSON.stringify(id)}`);
  return parsed.data;
}

function entryOf(id: string): string {
  return PREFIX + tenantId(id);
}

function decode(store: SealedStore, id: string, plaintext: Buffer): TenantRecord {
  const file = join(store.dir, entryOf(id) + SEALED_SUFFIX);
  let raw: unknown;
  try {
    raw = JSON.parse(plaintext.toString('utf8'));
  } catch (cause) {
    throw new SealedStateError('corrupt', `${file} is corrupt: its content is not JSON`, file, { cause });
  }
  const parsed = TenantRecord.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SealedStateError('corrupt', `${file} is corrupt: ${issue?.path.join('.') || '(record)'}: ${issue?.message ?? 'invalid'}`, file);
  }
  if (parsed.data.tenant !== id) throw new SealedStateError('corrupt', `${file} is corrupt: it holds tenant ${parsed.data.tenant}`, file);
  return parsed.data;
}

/**
 * Opens the agent's state dir (created 0700 if absent). A dir sealed on another device fails
 * here with "enrolled on another device — enroll again", before anything in it is changed.
 */
export async function openAgentState(dir: string, opts: AgentStateOptions = {}): Promise<AgentState> {
  const store = await openSealedStore(dir, opts.fingerprint ?? deviceFingerprint());
  return {
    dir,
    async listTenants() {
      return (await store.list()).filter((n) => n.startsWith(PREFIX)).map((n) => n.slice(PREFIX.length));
    },
    async readTenant(id) {
      const plaintext = await store.read(entryOf(id), tenantId(id));
      return plaintext && decode(store, id, plaintext);
    },
    async writeTenant(id, data) {
      const parsed = TenantRecord.safeParse(data);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`tenant record ${id}: ${issue?.path.join('.') || '(record)'}: ${issue?.message ?? 'invalid'}`);
      }
      if (parsed.data.tenant !== id) throw new Error(`tenant record for ${JSON.stringify(parsed.data.tenant)} written as tenant ${JSON.stringify(id)}`);
      await store.write(entryOf(id), tenantId(id), Buffer.from(JSON.stringify(parsed.data), 'utf8'));
      return parsed.data;
    },
    removeTenant: (id) => store.remove(entryOf(id)),
    async readEntry(name) {
      const plaintext = await store.read(ENTRY_PREFIX + name, name);
      if (!plaintext) return undefined;
      try {
        return JSON.parse(plaintext.toString('utf8')) as unknown;
      } catch (cause) {
        throw new SealedStateError('corrupt', `${join(store.dir, ENTRY_PREFIX + name + SEALED_SUFFIX)} is corrupt: its content is not JSON`, undefined, { cause });
      }
    },
    writeEntry: (name, value) => store.write(ENTRY_PREFIX + name, name, Buffer.from(JSON.stringify(value), 'utf8')),
  };
}

/** The Z-Tunnel identity a record holds. */
export function tlsIdentityOf(record: TenantRecord): TlsIdentity {
  return { keyPem: record.keyPem, certPem: record.certChainPem };
}
