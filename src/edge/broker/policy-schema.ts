import { z } from 'zod';

/**
 * Tenant access-policy configuration (seed 003, "Access policy"). Objects are strict: a
 * misspelt condition key ("group" for "groups") would otherwise be dropped silently and widen
 * the rule to everyone, which is the wrong failure mode for an access policy.
 */

/** Condition lists are non-empty: "absent = any" is the only way to say "any", so an empty
 * list cannot be misread as either "nobody" or "everybody". */
const Ids = z.array(z.string().min(1).max(256)).min(1);

export const AccessAction = z.enum(['allow', 'deny']);
export type AccessAction = z.infer<typeof AccessAction>;

export const AccessRule = z.strictObject({
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(256),
  action: AccessAction,
  /** Segment ids the rule applies to. */
  segments: Ids.optional(),
  /** Segment-group ids the rule applies to. */
  segmentGroups: Ids.optional(),
  /** User names (UPN / e-mail), compared case-insensitively. */
  users: Ids.optional(),
  /** SAML group names, compared exactly; the rule matches if the user is in any of them. */
  groups: Ids.optional(),
});
export type AccessRule = z.infer<typeof AccessRule>;

/** How a hostname is mapped to application segments (seed 003). */
export const MatchMode = z.enum(['first-match', 'multimatch']);
export type MatchMode = z.infer<typeof MatchMode>;

export const TenantPolicy = z
  .strictObject({
    matchMode: MatchMode.default('first-match'),
    /** Evaluated in order; the first rule whose conditions all hold wins; none → deny. */
    rules: z.array(AccessRule).default([]),
  })
  .superRefine((p, ctx) => {
    // Decisions are logged by rule id, so ids must identify one rule.
    const seen = new Set<string>();
    p.rules.forEach((r, i) => {
      if (seen.has(r.id)) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${r.id}"` });
      }
      seen.add(r.id);
    });
  });
export type TenantPolicy = z.infer<typeof TenantPolicy>;
export type TenantPolicyInput = z.input<typeof TenantPolicy>;
