/** What went wrong on the wire; stable strings, logged and sent in `error` control messages. */
export type ProtocolErrorCode =
  | 'frame-too-large'
  | 'frame-truncated'
  | 'bad-json'
  | 'bad-message'
  | 'out-of-order'
  | 'version-mismatch'
  | 'bad-open'
  | 'duplicate-tag'
  | 'unknown-request'
  | 'timeout'
  | 'closed';

/** A typed protocol violation; `where` names the stream or frame it was found in. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    readonly where?: string,
  ) {
    super(where ? `${code} in ${where}: ${message}` : `${code}: ${message}`);
    this.name = 'ProtocolError';
  }
}
