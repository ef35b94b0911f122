/**
 * The forwarding decision of a tenant: its profile (seed: "at all times, when on an untrusted
 * network only, or never") and whether the machine is on the trusted network. Pure, so the
 * runtime, status and tests all agree on it.
 */
import type { ForwardingProfile } from '../config/schema.js';

export type ForwardingAction = 'tunnel' | 'direct';
export type NetworkType = 'trusted' | 'untrusted';

export function shouldTunnel(profile: ForwardingProfile, trusted: boolean): ForwardingAction {
  switch (profile) {
    case 'always':
      return 'tunnel';
    case 'untrusted-only':
      return trusted ? 'direct' : 'tunnel';
    case 'never':
      return 'direct';
  }
}

/** What status shows per tenant: the profile, the network type and the resulting action. */
export interface ForwardingDecision {
  profile: ForwardingProfile;
  networkType: NetworkType;
  action: ForwardingAction;
}

export function forwardingDecision(profile: ForwardingProfile, trusted: boolean): ForwardingDecision {
  return { profile, networkType: trusted ? 'trusted' : 'untrusted', action: shouldTunnel(profile, trusted) };
}

/** One line for status and the UI, e.g. "profile untrusted-only on a trusted network: direct". */
export function forwardingReason(d: ForwardingDecision): string {
  const profile = { always: 'tunnel always', 'untrusted-only': 'tunnel only off trusted networks', never: 'tunnel never' }[d.profile];
  return `${profile}; ${d.networkType} network: ${d.action === 'tunnel' ? 'through the tunnel' : 'not through the tunnel'}`;
}
