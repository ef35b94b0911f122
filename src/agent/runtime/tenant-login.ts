import type { Logger } from '../../common/log.js';
import { loginWithBrowser, type LoginTicket } from '../identity/login.js';
import type { ResolvedTenant } from './runtime-config.js';

export interface LoginRequest {
  tenant: ResolvedTenant;
  /** What to do with the ticket: enroll the device, or re-authenticate the enrolled one. */
  complete(ticket: LoginTicket): Promise<void>;
}

export interface TenantLoginOptions {
  log: Logger;
  /**
   * Shows the sign-in URL to someone. The agent runs as a system service and has no browser
   * of its own: by default the URL only goes back to the caller (tray, CLI), which opens it
   * in the desktop user's browser. The demo passes a scripted browser for its first login.
   */
  openUrl?: (tenant: string, url: string) => void | Promise<void>;
  timeoutMs?: number;
}

/**
 * One interactive sign-in per tenant at a time. `start` resolves as soon as the sign-in URL is
 * known (the login itself goes on in the background until the browser comes back to the
 * loopback callback, or the timeout); a second `start` while one runs returns the same URL.
 */
export class TenantLogin {
  private readonly running = new Map<string, Promise<string>>();

  constructor(private readonly opts: TenantLoginOptions) {}

  inProgress(tenant: string): boolean {
    return this.running.has(tenant);
  }

  start(req: LoginRequest): Promise<string> {
    const id = req.tenant.id;
    const existing = this.running.get(id);
    if (existing) return existing;
    const { log } = this.opts;
    const url = new Promise<string>((resolveUrl, rejectUrl) => {
      const login = loginWithBrowser({
        tenant: id,
        enroll: req.tenant.enroll,
        serverName: req.tenant.serverName,
        caPem: req.tenant.caPem,
        log: log.child({ tenant: id }),
        timeoutMs: this.opts.timeoutMs,
        openUrl: async (u) => {
          resolveUrl(u);
          await this.opts.openUrl?.(id, u);
        },
      });
      login
        .then((ticket) => req.complete(ticket))
        .then(
          () => log.info({ tenant: id }, 'sign-in complete'),
          (err: unknown) => {
            rejectUrl(err as Error);
            log.warn({ tenant: id, err: (err as Error).message }, 'sign-in failed');
          },
        )
        .finally(() => this.running.delete(id));
    });
    this.running.set(id, url);
    // A failure before the URL is known reaches the caller; after, only the log.
    url.catch(() => this.running.delete(id));
    return url;
  }
}
