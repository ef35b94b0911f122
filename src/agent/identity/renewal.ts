// Client certificate lifecycle on the agent: before the certificate runs out, a new key pair is
// generated here, certified over mTLS (authenticated by the current certificate) at the
// enrollment service's /v1/renew, and swapped into the sealed state, with no user action.
import { createPublicKey, X509Certificate } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import { canonicalSerial } from '../../protocol/cert-serial.js';
import { ENROLL_PATHS, EnrollError, postEnroll } from '../../protocol/enroll-api.js';
import { tlsIdentityOf, type AgentState, type TenantRecord } from './agent-state.js';
import { deviceFingerprint, resolveFingerprint, type FingerprintSource } from './fingerprint.js';
import { loadPki } from './pki-loader.js';

/** Renew once less than this fraction of the certificate's lifetime is left. */
export const DEFAULT_RENEW_BELOW = 1 / 3;
const DEFAULT_CHECK_EVERY_MS = 3_600_000;
/** After a failed attempt: soon enough to beat expiry, slow enough not to hammer the cloud. */
const DEFAULT_RETRY_MS = 300_000;

export interface RenewalSchedule {
  due: boolean;
  notAfter: Date;
  /** When less than `renewBelow` of the lifetime is left. */
  renewAt: Date;
}

/** Whether the leaf of `certChainPem` is in its last `renewBelow` of validity at `now`. */
export function renewalSchedule(certChainPem: string, now: number, renewBelow = DEFAULT_RENEW_BELOW): RenewalSchedule {
  if (!(renewBelow > 0 && renewBelow < 1)) throw new RangeError(`renewBelow must be between 0 and 1, got ${renewBelow}`);
  const leaf = new X509Certificate(certChainPem);
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  const renewAt = notAfter - (notAfter - notBefore) * renewBelow;
  return { due: now >= renewAt, notAfter: new Date(notAfter), renewAt: new Date(renewAt) };
}

export class RenewalError extends Error {
  override readonly name = 'RenewalError';
}

/**
 * Renews the tenant's certificate now and stores the new key and chain; returns the stored
 * record. The old key is replaced, never kept: it stays valid at the edge only until it expires.
 */
export async function renewTenantCertificate(state: AgentState, tenant: string, fingerprint: string = deviceFingerprint()): Promise<TenantRecord> {
  const record = await state.readTenant(tenant);
  if (!record) throw new RenewalError(`tenant ${tenant} is not enrolled`);
  return renewRecord(state, record, fingerprint);
}

/** The renewal itself, for a record already read (the renewer has it from its due check). */
async function renewRecord(state: AgentState, record: TenantRecord, fingerprint: string): Promise<TenantRecord> {
  const { tenant } = record;
  if (!record.enroll) throw new RenewalError(`tenant ${tenant} has no enrollment service address to renew at`);
  const { createCsr, generateKeyPair, identityFromCertificate, identityToUri } = await loadPki();
  const current = identityFromCertificate(record.certChainPem);
  if (current.kind !== 'client') throw new RenewalError(`tenant ${tenant} holds a ${current.kind} certificate, not an agent's`);
  const keys = await generateKeyPair();
  const csr = await createCsr({ keys, subject: { commonName: current.device } });
  let res;
  try {
    res = await postEnroll(record.enroll, ENROLL_PATHS.renew, { fingerprint, csr }, record.caPem, record.serverName, tlsIdentityOf(record));
  } catch (err) {
    const why = err instanceof EnrollError ? err.message : `enrollment service unreachable: ${(err as Error).message}`;
    throw new RenewalError(`renewal of tenant ${tenant}'s certificate failed: ${why}`, { cause: err });
  }
  // Stored only if it certifies the key just made for the same identity: a wrong answer written
  // to disk would leave the agent with no usable certificate at all.
  const leaf = new X509Certificate(res.certChainPem);
  if (!leaf.publicKey.equals(createPublicKey(keys.privateKeyPem))) throw new RenewalError(`renewed certificate of tenant ${tenant} is not for the new key`);
  if (identityToUri(identityFromCertificate(res.certChainPem)) !== identityToUri(current)) {
    throw new RenewalError(`renewed certificate of tenant ${tenant} names another identity`);
  }
  return state.writeTenant(tenant, {
    ...record,
    keyPem: keys.privateKeyPem,
    certChainPem: res.certChainPem,
    identityUri: res.identityUri,
    renewedAt: new Date().toISOString(),
  });
}

export interface RenewerOptions {
  state: AgentState;
  tenant: string;
  log: Logger;
  /** Fraction of the lifetime left below which to renew (default 1/3). */
  renewBelow?: number;
  /** How often to look at the certificate (default hourly). */
  checkEveryMs?: number;
  /** Wait after a failed renewal (default 5 min, never longer than checkEveryMs). */
  retryMs?: number;
  fingerprint?: FingerprintSource;
  /** Told about each renewal, e.g. to hand the new identity to the tenant's TunnelClient. */
  onRenewed?: (record: TenantRecord) => void;
}

/** Looks at one tenant's certificate periodically (and at start) and renews it when due. */
export class CertificateRenewer {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<'renewed' | 'not-due'> | null = null;
  private stopped = true;

  constructor(private readonly opts: RenewerOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Renews now if due; one check at a time, a concurrent caller shares the running one. */
  check(): Promise<'renewed' | 'not-due'> {
    this.running ??= this.checkOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async checkOnce(): Promise<'renewed' | 'not-due'> {
    const { state, tenant, log } = this.opts;
    const record = await state.readTenant(tenant);
    if (!record) throw new RenewalError(`tenant ${tenant} is not enrolled`);
    const schedule = renewalSchedule(record.certChainPem, Date.now(), this.opts.renewBelow);
    if (!schedule.due) return 'not-due';
    log.info({ tenant, notAfter: schedule.notAfter.toISOString() }, 'client certificate due for renewal');
    const renewed = await renewRecord(state, record, resolveFingerprint(this.opts.fingerprint));
    const leaf = new X509Certificate(renewed.certChainPem);
    log.info({ tenant, serial: canonicalSerial(leaf.serialNumber), notAfter: new Date(leaf.validTo).toISOString() }, 'client certificate renewed');
    this.opts.onRenewed?.(renewed);
    return 'renewed';
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.check().then(
        () => this.schedule(this.opts.checkEveryMs ?? DEFAULT_CHECK_EVERY_MS),
        (err: unknown) => {
          this.opts.log.warn({ tenant: this.opts.tenant, err: (err as Error).message }, 'client certificate renewal failed; will retry');
          const every = this.opts.checkEveryMs ?? DEFAULT_CHECK_EVERY_MS;
          this.schedule(Math.min(this.opts.retryMs ?? DEFAULT_RETRY_MS, every));
        },
      );
    }, ms);
    this.timer.unref();
  }
}
