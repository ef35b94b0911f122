import { AuthStore } from '../enroll/auth-store.js';
import type { CachedAssertion } from './dr-bundle.js';

/**
 * The cloud's auth store, able to list what it holds: the DR export carries each device's last
 * assertion to the private service edges, which cannot reach the IdP during DR.
 */
export class SnapshotAuthStore extends AuthStore {
  private readonly devices = new Map<string, Set<string>>();

  override set(...args: Parameters<AuthStore['set']>): void {
    super.set(...args);
    const [tenant, device] = args;
    const set = this.devices.get(tenant) ?? new Set<string>();
    set.add(device);
    this.devices.set(tenant, set);
  }

  /**
   * The tenant's records. Lapsed ones are included (DR extends them); sessions an administrator
   * ended (`expire`, expiresAt 0) are not, so DR cannot bring them back.
   */
  assertions(tenant: string): CachedAssertion[] {
    return [...(this.devices.get(tenant) ?? [])].flatMap((device) => {
      const r = this.get(tenant, device);
      return r && r.expiresAt > 0 ? [{ device, user: r.user, groups: [...r.groups], expiresAt: r.expiresAt }] : [];
    });
  }
}
