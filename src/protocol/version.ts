/** Wire protocol version carried in hello; bumped on any incompatible change to docs/protocol.md. */
export const PROTOCOL_VERSION = 1;

/** TLS ALPN identifier of a Z-Tunnel; a peer offering anything else is not one of ours. */
export const ZTUNNEL_ALPN = `zcc/${PROTOCOL_VERSION}`;

/** Path of the control stream, the first stream the HTTP/2 client side opens. */
export const CONTROL_PATH = `/zcc/${PROTOCOL_VERSION}/control`;

/** A server that resets a client's microtunnel on a `reset` control message (docs/protocol.md §5.3). */
export const RESET_REQUEST_CAPABILITY = 'reset-request';

/** Capabilities this implementation announces in hello. */
export const CAPABILITIES = ['microtunnel-tcp', 'segments-v1', 'probe-v1', 'reset-reasons-v1', RESET_REQUEST_CAPABILITY] as const;
