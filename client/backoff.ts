/**
 * Capped exponential backoff with full jitter: how long the client waits before its next try
 * after a member was lost or asked it to come back later. Pure (randomness is passed in), so
 * its bounds are tested with a fixed random source.
 *
 * Must never: wait longer than the cap, or less than zero; grow without bound.
 */

export interface BackoffPolicy {
  /** The first wait's ceiling, in ms. */
  readonly baseMs: number;
  /** No wait is longer than this. */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 25, capMs: 1_000 };

/** The wait before try `attempt` (0 = the first retry): a random point in [0, min(cap, base·2^attempt)]. */
export function backoffMs(policy: BackoffPolicy, attempt: number, random: () => number): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
