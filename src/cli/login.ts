import { openSystemBrowser } from '../agent/identity/login.js';
import { createLogger } from '../common/log.js';
import type { AgentClient } from '../common/localapi-client.js';
import type { AgentStatus, TenantStatus } from '../common/localapi-schema.js';

/** Which tenant a command is about: the one named, or the only one. */
export function pickTenant(status: AgentStatus, tenant: string | undefined): TenantStatus {
  if (tenant) {
    const t = status.tenants.find((x) => x.id === tenant);
    if (!t) throw new Error(`no tenant ${tenant} (tenants: ${status.tenants.map((x) => x.id).join(', ') || 'none'})`);
    return t;
  }
  if (status.tenants.length !== 1) throw new Error(`--tenant ID is required (tenants: ${status.tenants.map((x) => x.id).join(', ') || 'none'})`);
  return status.tenants[0]!;
}

/** Signed in: the tunnel is up with a session whose expiry is new (a fresh enrollment, or a re-authentication). */
const signedIn = (before: TenantStatus, now: TenantStatus | undefined): boolean =>
  !!now &&
  (now.connection === 'connected' || now.connection === 'safe-mode') &&
  now.authExpiresAt !== undefined &&
  !now.needsReauth &&
  (before.enrollment === 'not-enrolled' || now.authExpiresAt !== before.authExpiresAt);

/**
 * `zcc login [--tenant ID]`: asks the agent to start a sign-in, opens the URL it answers in this
 * user's browser (the agent, a system service, has none), and waits until the agent reports
 * the tenant signed in.
 */
export async function loginCommand(client: AgentClient, a: { tenant?: string; browser?: boolean; timeoutMs?: number }): Promise<void> {
  const before = pickTenant(await client.request('status', {}), a.tenant);
  const started = await client.request('reauth', { tenant: before.id });
  if (!started.loginUrl) throw new Error(`the agent started no browser sign-in for ${before.id}`);
  console.log(`Sign in to ${before.name} in your browser:\n  ${started.loginUrl}`);
  if (a.browser !== false) openSystemBrowser(createLogger({ name: 'zcc-login', level: 'warn' }))(started.loginUrl);
  const deadline = Date.now() + (a.timeoutMs ?? 5 * 60_000);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error('sign-in not completed in time'));
    }, deadline - Date.now());
    const stop = client.watch({
      onEvent: (e) => {
        const now = e.status.tenants.find((t) => t.id === before.id);
        if (!signedIn(before, now)) return;
        clearTimeout(timer);
        stop();
        console.log(`signed in to ${before.id} as ${now!.user ?? '?'}; authentication valid until ${now!.authExpiresAt ?? '?'}`);
        resolve();
      },
      // The client reconnects by itself; the timeout above bounds the wait.
      onError: () => undefined,
    });
  });
}
