/**
 * Capped exponential backoff with jitter: how long the client waits before its next try after a
 * member was lost or asked it to come back later. "Equal jitter": half the step is fixed, half
 * random, so clients spread out and yet never retry in a tight loop, whatever the random source
 * says. Pure (randomness is passed in), so its bounds are tested with fixed random sources.
 *
 * Must never: wait longer than the cap, or less than half the step; grow without bound.
 */

export interface BackoffPolicy {
  /** The first wait's ceiling, in ms. */
  readonly baseMs: number;
  /** No wait is longer than this. */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 25, capMs: 1_000 };

/** The wait before try `attempt` (0 = the first retry): in [step/2, step], step = min(cap, base·2^attempt). */
export function backoffMs(policy: BackoffPolicy, attempt: number, random: () => number): number {
  const step = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  const jitter = Math.min(Math.max(random(), 0), 1);
  return Math.ceil(step / 2 + (jitter * step) / 2);
}
