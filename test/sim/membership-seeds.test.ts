/**
 * Seeds on which the simulator's operator (membership changes under faults) found bugs in the
 * member, replayed as the CLI runs them (the seed chooses the cluster's size). Each pair fails
 * when its fix is taken back (found over seeds 1..600 with the fix reverted):
 * - 87, 165: a leader streamed a snapshot of its store with the configuration of the core's
 *   older snapshot index; the follower that installed it lost the changes between, members
 *   disagreed on who votes, and no leader was elected after the heal (snapshot-sender.ts).
 * - 33, 473: a member held the longest log with its own removal not yet committed; it did not
 *   campaign and the others could not win (raft.ts, promotable).
 * The third bug it found — a lone voter counting its own entries toward commit before they were
 * durable, so that its learner applied entries a power cut then took — no longer shows in these
 * seeds' runs; test/server/raft/single-member.test.ts holds it.
 * A change to the simulator's draws moves these runs: find the seeds again the same way.
 *
 * Must never: pass a seed whose run did not change the membership (it would no longer test the fix).
 */

import { describe, expect, it } from 'vitest';
import { runSimulation } from './simulation.js';
import { CI_STEPS } from './seed-batch.js';

describe('simulator seeds that found membership bugs', () => {
  it.each([87, 165, 33, 473])('seed %i keeps every property', async (seed) => {
    const r = await runSimulation({ seed, steps: CI_STEPS });
    expect(r.violation?.detail ?? null).toBeNull();
    expect(r.linearizability).toBe('ok');
    expect(r.coverage.membershipChanges).toBeGreaterThan(0);
  });
});
