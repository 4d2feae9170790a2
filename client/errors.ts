/**
 * Typed errors of the client library. Every promise the library rejects, rejects with a
 * PompeClientError whose `code` says what the caller can do about it:
 *
 * - TIMEOUT: no outcome within `timeoutMs`. The command may still execute later (exactly once:
 *   its (client id, sequence number) tag is never reused), so the outcome is unknown, not "failed".
 * - CLOSED: the client was closed before the command completed (same caveat as TIMEOUT).
 * - REFUSED: f+1 replicas refused the batch (malformed, too large, a full store), so at least one
 *   correct replica did: it will not execute as sent. Also a command the cluster can never accept.
 * - EXPIRED: the batch's lifetime ran out before it could be ordered; it will never execute.
 * - UNAVAILABLE: fewer replicas are reachable than the client needs (q in direct mode, one in
 *   gateway mode) for longer than `quorumLossGraceMs`. Commands in flight then may still execute
 *   (as after TIMEOUT); commands submitted while unavailable were never sent. Submit again once
 *   the client is available (`client.available`, `onAvailabilityChange`).
 * - NOT_ALLOWED: the cluster admits only the client keys on its allow-list (`clientKeys` in
 *   cluster.json), and this client's key is not one: f+1 replicas refused it (connect(), or a batch).
 * - EXECUTION_FAILED: the command was ordered and executed, and the state machine threw on it
 *   (f+1 replicas agree): it is done, with no result (ordering/stateMachine.ts).
 * - BAD_CONFIG: the options or the cluster config are invalid (thrown by connect()).
 */
export const PompeClientErrorCode = {
  Timeout: 'TIMEOUT',
  Closed: 'CLOSED',
  Refused: 'REFUSED',
  Expired: 'EXPIRED',
  Unavailable: 'UNAVAILABLE',
  NotAllowed: 'NOT_ALLOWED',
  ExecutionFailed: 'EXECUTION_FAILED',
  BadConfig: 'BAD_CONFIG',
} as const;
export type PompeClientErrorCode = (typeof PompeClientErrorCode)[keyof typeof PompeClientErrorCode];

export class PompeClientError extends Error {
  override readonly name = 'PompeClientError';

  constructor(
    readonly code: PompeClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
  }
}

export const isPompeClientError = (value: unknown, code?: PompeClientErrorCode): value is PompeClientError =>
  value instanceof PompeClientError && (code === undefined || value.code === code);

/** Maps a Collector 'failed' reason (ordering/collector.ts) to the error a caller sees. */
export function collectorFailure(reason: string): PompeClientError {
  if (/expired/i.test(reason)) return new PompeClientError(PompeClientErrorCode.Expired, reason);
  if (/notAllowed/.test(reason)) return new PompeClientError(PompeClientErrorCode.NotAllowed, `${reason} (this client's key is not on the cluster's allow-list)`);
  return new PompeClientError(PompeClientErrorCode.Refused, reason);
}
