/**
 * Typed errors for bad input (from the network, a file or a user). These are handled, counted and
 * reported; they never crash a process. Programmer errors use assert() instead.
 */
export const ErrorCode = {
  /** Frame is not valid msgpack, or not an array with a known type tag. */
  MalformedFrame: 'MALFORMED_FRAME',
  /** Frame exceeds MAX_FRAME_BYTES. */
  FrameTooLarge: 'FRAME_TOO_LARGE',
  /** Type tag not known to this version. */
  UnknownMessage: 'UNKNOWN_MESSAGE',
  /** A field has the wrong type, length or range. */
  InvalidField: 'INVALID_FIELD',
  /** A signature does not verify, or is not well formed. */
  BadSignature: 'BAD_SIGNATURE',
  /** A replica id outside the cluster. */
  UnknownReplica: 'UNKNOWN_REPLICA',
  /** A certificate with too few, duplicate or unknown signers, or a wrong median. */
  BadCertificate: 'BAD_CERTIFICATE',
  /** A batch that is malformed, too large or expired. */
  BadBatch: 'BAD_BATCH',
  /** A cluster config or key file that does not validate. */
  InvalidConfig: 'INVALID_CONFIG',
  /** A peer handshake that failed. */
  HandshakeFailed: 'HANDSHAKE_FAILED',
  /** A bounded store is full, or a budget is spent; the request may be retried later. */
  Overloaded: 'OVERLOADED',
  /** The client's key is not on the cluster's allow-list. */
  NotAllowed: 'NOT_ALLOWED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface PompeError {
  readonly code: ErrorCode;
  readonly message: string;
}

export type Result<T, E = PompeError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = (code: ErrorCode, message: string): Result<never> => ({ ok: false, error: { code, message } });
