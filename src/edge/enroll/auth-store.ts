import type { AuthRecord } from '../broker/agent-handler.js';

/**
 * Who is logged in on which device, per tenant, until when. Kept in memory on the edge: after a
 * cloud restart users authenticate again, which is the safe direction to fail in.
 */
export class AuthStore {
  private readonly records = new Map<string, AuthRecord>();

  set(tenant: string, device: string, record: AuthRecord): void {
    this.records.set(`${tenant}/${device}`, record);
  }

  get(tenant: string, device: string): AuthRecord | undefined {
    return this.records.get(`${tenant}/${device}`);
  }

  /** Ends a session early, e.g. when an administrator revokes it. */
  expire(tenant: string, device: string): void {
    const r = this.get(tenant, device);
    if (r) r.expiresAt = 0;
  }
}
