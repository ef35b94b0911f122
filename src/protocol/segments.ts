import { z } from 'zod';

/** L4 protocol of an application segment or a microtunnel. */
export const L4Protocol = z.enum(['tcp', 'udp']);
export type L4Protocol = z.infer<typeof L4Protocol>;

/** Inclusive port range; a single port has from === to. */
export const PortRange = z
  .object({ from: z.number().int().min(1).max(65535), to: z.number().int().min(1).max(65535) })
  .refine((r) => r.from <= r.to, { message: 'port range "from" must not exceed "to"' });
export type PortRange = z.infer<typeof PortRange>;

/**
 * A domain entry of a segment: an exact FQDN ("intranet.demo.internal") or a wildcard
 * ("*.apps.demo.internal") that matches every level below the suffix, never the suffix itself.
 */
export const DomainPattern = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    message: 'expected a lower-case FQDN or "*." followed by one',
  });

/** An application segment as the edge distributes it to agents. */
export const AppSegment = z.object({
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(256),
  domains: z.array(DomainPattern).min(1),
  tcpPorts: z.array(PortRange).default([]),
  udpPorts: z.array(PortRange).default([]),
  /** Multimatch (seed 003): this segment lets matching continue to less specific ones. */
  multimatch: z.boolean().default(false),
  /** Available through the private service edge during disaster recovery. */
  drEnabled: z.boolean().default(false),
});
export type AppSegment = z.infer<typeof AppSegment>;
export type AppSegmentInput = z.input<typeof AppSegment>;
