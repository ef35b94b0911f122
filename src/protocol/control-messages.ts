import { z } from 'zod';
import { isResetReason, type ResetReason } from './microtunnel-open.js';
import { AppSegment, L4Protocol } from './segments.js';

/** Identity of a control request, echoed by its response. */
const RequestId = z.number().int().min(1).max(2 ** 31);

export const Hello = z.object({
  type: z.literal('hello'),
  version: z.number().int().min(1),
  role: z.enum(['agent', 'connector', 'edge']),
  capabilities: z.array(z.string().max(64)).max(64),
  software: z.string().max(128),
  /**
   * Agents only: the device fingerprint as computed now, on the device the agent runs on. The
   * edge compares it with the one certified at enrollment, so a copied key and certificate are
   * refused on another device.
   */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

/** Full list of the tenant's app segments the user may use; replaces any previous list. */
export const Segments = z.object({
  type: z.literal('segments'),
  revision: z.number().int().min(0),
  segments: z.array(AppSegment).max(10_000),
});

/** Incremental change to the segment list; applies to the revision just before it. */
export const SegmentsUpdate = z.object({
  type: z.literal('segments-update'),
  revision: z.number().int().min(1),
  upsert: z.array(AppSegment).max(10_000),
  remove: z.array(z.string()).max(10_000),
});

/** What the edge knows about the session it serves: identity as the certificate proves it. */
export const SessionInfo = z.object({
  type: z.literal('session-info'),
  tenant: z.string(),
  user: z.string().optional(),
  device: z.string().optional(),
  edge: z.string(),
  authExpiresAt: z.string().datetime().optional(),
});

/** Edge asks a connector whether it can resolve and reach a target, and how fast (seed 002 step 3). */
export const ProbeRequest = z.object({
  type: z.literal('probe'),
  id: RequestId,
  proto: L4Protocol,
  host: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535),
});

export const ProbeResult = z.object({
  type: z.literal('probe-result'),
  id: RequestId,
  ok: z.boolean(),
  rttMs: z.number().min(0).optional(),
  reason: z.string().max(256).optional(),
});

/** Agent asks whether an app name resolves and is reachable behind some connector (seed 003). */
export const ReachRequest = z.object({
  type: z.literal('reach'),
  id: RequestId,
  host: z.string().min(1).max(253),
  proto: L4Protocol.optional(),
  port: z.number().int().min(1).max(65535).optional(),
});

export const ReachResult = z.object({
  type: z.literal('reach-result'),
  id: RequestId,
  ok: z.boolean(),
  reason: z.string().max(256).optional(),
});

/** Connector load report, used by the dispatcher for least-utilisation selection. */
export const Health = z.object({
  type: z.literal('health'),
  activeMicrotunnels: z.number().int().min(0),
  bytesIn: z.number().min(0),
  bytesOut: z.number().min(0),
});

/** A peer reports a problem; `ref` names the request or message it concerns. */
export const ErrorMessage = z.object({
  type: z.literal('error'),
  code: z.string().max(64),
  message: z.string().max(1024),
  ref: z.number().int().optional(),
});

/**
 * The HTTP/2 client of a Z-Tunnel asks the server to reset one of the client's microtunnels
 * (by tag) with a reason. Only servers send RST_STREAM (docs/protocol.md §5.3): a server's
 * nghttp2 tears the whole session down after 1,000 RST_STREAMs received in a burst (33/s after).
 */
export const ResetRequest = z.object({
  type: z.literal('reset'),
  tag: z.number().int().min(1).max(0xffffffff),
  reason: z.string().refine(isResetReason, 'unknown reset reason').transform((r) => r as ResetReason),
});

export const ControlMessage = z.discriminatedUnion('type', [
  Hello,
  Segments,
  SegmentsUpdate,
  SessionInfo,
  ProbeRequest,
  ProbeResult,
  ReachRequest,
  ReachResult,
  Health,
  ErrorMessage,
  ResetRequest,
]);

export type ControlMessage = z.infer<typeof ControlMessage>;
export type ControlMessageOf<T extends ControlMessage['type']> = Extract<ControlMessage, { type: T }>;
export type HelloMessage = z.infer<typeof Hello>;

/** Request types and the response type each expects. */
export const RESPONSE_OF = { probe: 'probe-result', reach: 'reach-result' } as const;
export type RequestType = keyof typeof RESPONSE_OF;
export type ResponseOf<T extends RequestType> = ControlMessageOf<(typeof RESPONSE_OF)[T]>;
