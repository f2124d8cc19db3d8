/**
 * The error-code registry: every error a member or the client library reports carries one of
 * these codes. Errors are values (`WardenError`), never bare strings, so callers can branch on
 * `code` and tell "certainly not applied" from "outcome unknown".
 *
 * Must never: import server/ or client/, or grow a code that is not documented in README.md
 * (a test holds the two together).
 */

export const ERROR_CODES = {
  NOT_LEADER: 'this member is not the leader; the response carries a leader hint when one is known',
  NO_NODE: 'the path does not exist',
  NODE_EXISTS: 'the path already exists',
  BAD_VERSION: 'the version given for compare-and-set does not match',
  NOT_EMPTY: 'the node has children and the delete was not recursive',
  COMPACTED: 'the requested revision is older than the compaction low-water mark',
  LEASE_NOT_FOUND: 'the lease does not exist or has expired',
  INVALID_ARGUMENT: 'the request is malformed (bad path, bad field, bad value)',
  TOO_LARGE: 'the value or request exceeds the size limit',
  UNAVAILABLE: 'the cluster cannot serve the request now (no quorum, leadership changing); safe to retry',
  TIMEOUT: 'the request did not complete in time; its outcome is unknown',
  UNAUTHENTICATED: 'the request carries no valid credentials',
  PERMISSION_DENIED: 'the credentials do not allow this operation',
  SESSION_EXPIRED: 'the client session is unknown or expired; whether its earlier requests were applied can no longer be told; register a new session',
  WATCH_NOT_FOUND: 'no watch with that id is open on this connection (never started, or already cancelled)',
  SLOW_CONSUMER: 'the watcher did not read its events fast enough and was cancelled; resume from the revision given',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class WardenError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string = ERROR_CODES[code]) {
    super(message);
    this.name = 'WardenError';
    this.code = code;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}
