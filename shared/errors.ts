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
  RESOURCE_EXHAUSTED: 'a limit of this member or cluster is reached (connections, requests in flight, watches, sessions, leases); not applied: retry later or free some',
  TIMEOUT: 'a write did not complete in time; it may have been applied: retry only with its session stamp',
  OUTCOME_UNKNOWN: 'the write may or may not have been applied (its answer was lost on the way); retry only with its session stamp',
  UNAUTHENTICATED: 'the request carries no valid credentials',
  PERMISSION_DENIED: 'the credentials do not allow this operation',
  SESSION_EXPIRED: 'the client session is unknown or expired; whether its earlier requests were applied can no longer be told; register a new session',
  WATCH_NOT_FOUND: 'no watch with that id is open on this connection (never started, or already cancelled)',
  SLOW_CONSUMER: 'the watcher did not read its events fast enough and was cancelled; resume from the revision given',
  NO_SPACE: 'the cluster is past its space quota (--quota-bytes): writes that add data are refused until deletes and compaction bring it back under (the alarm clears itself); deletes, compactions and reads work',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * What a client may do after each error, so it never retries a write that may have been
 * applied as if it had not been:
 * - `retry`: certainly not applied, and worth retrying as it is (elsewhere, or a little later);
 * - `unknown`: may have been applied; retry only with the write's session stamp (exactly-once);
 * - `final`: certainly not applied, and the same request would be refused again.
 */
export type ErrorOutcome = 'retry' | 'unknown' | 'final';

export const ERROR_OUTCOMES: { readonly [code in ErrorCode]: ErrorOutcome } = {
  NOT_LEADER: 'retry',
  NO_NODE: 'final',
  NODE_EXISTS: 'final',
  BAD_VERSION: 'final',
  NOT_EMPTY: 'final',
  COMPACTED: 'final',
  LEASE_NOT_FOUND: 'final',
  INVALID_ARGUMENT: 'final',
  TOO_LARGE: 'final',
  UNAVAILABLE: 'retry',
  RESOURCE_EXHAUSTED: 'retry',
  TIMEOUT: 'unknown',
  OUTCOME_UNKNOWN: 'unknown',
  UNAUTHENTICATED: 'final',
  PERMISSION_DENIED: 'final',
  SESSION_EXPIRED: 'unknown',
  WATCH_NOT_FOUND: 'final',
  SLOW_CONSUMER: 'retry',
  NO_SPACE: 'retry',
};

/** Whether a request refused with `code` may have been applied (retry only with its stamp). */
export function outcomeUnknown(code: ErrorCode): boolean {
  return ERROR_OUTCOMES[code] === 'unknown';
}

/** What an error frame may add to its code: the leader hint, the limit passed, where history begins. */
export interface WardenErrorDetails {
  /** NOT_LEADER: the leader this member knows of, and its client URL when known. */
  readonly leader?: { readonly name: string; readonly url: string | null };
  /** The limit the request passed: its name, the member's flag for it, and its value. */
  readonly limit?: { readonly name: string; readonly flag: string; readonly value: number };
  /** COMPACTED: the revision history now starts after (resync from a fresh read). */
  readonly compactRevision?: number;
}

export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly details: WardenErrorDetails;
  constructor(code: ErrorCode, message: string = ERROR_CODES[code], details: WardenErrorDetails = {}) {
    super(message);
    this.name = 'WardenError';
    this.code = code;
    this.details = details;
  }

  /** Certainly not applied, and worth trying again as it is (elsewhere, or a little later). */
  get retryable(): boolean {
    return ERROR_OUTCOMES[this.code] === 'retry';
  }

  /** May have been applied: retry a write only with its session stamp (the client does). */
  get outcomeUnknown(): boolean {
    return ERROR_OUTCOMES[this.code] === 'unknown';
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}
