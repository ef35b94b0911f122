/** When a sign-in started from the window has finished, judged from the agent's status. Pure. */
import type { TenantStatus } from '../common/localapi-schema.js';
import { tenantNotEnrolled } from '../common/status-view.js';

/** What the tenant looked like when the sign-in started. */
export interface SignInStart {
  authExpiresAt?: string;
  /** A sign-in was required then (re-auth needed or not enrolled). */
  needed: boolean;
}

export function signInStart(t: TenantStatus): SignInStart {
  return { authExpiresAt: t.authExpiresAt, needed: t.needsReauth || tenantNotEnrolled(t) };
}

/**
 * The agent reports the tenant signed in: no sign-in required any more and, for a voluntary
 * re-authentication, a new expiry.
 */
export function signInCompleted(start: SignInStart, t: TenantStatus): boolean {
  if (t.needsReauth || tenantNotEnrolled(t)) return false;
  return start.needed || (t.authExpiresAt !== undefined && t.authExpiresAt !== start.authExpiresAt);
}
