/**
 * Seeds on which the simulator's operator (membership changes under faults) found bugs in the
 * member, replayed as the CLI runs them (the seed chooses the cluster's size). Each pair fails
 * when its fix is taken back (measured over seeds 1..300 with the fix reverted):
 * - 90, 133: a leader streamed a snapshot of its store with the configuration of the core's
 *   older snapshot index; the follower that installed it lost the changes between, members
 *   disagreed on who votes, and no leader was elected after the heal (snapshot-sender.ts).
 * - 15, 28: a member held the longest log with its own removal not yet committed; it did not
 *   campaign and the others could not win (raft.ts, promotable).
 * - 75, 214: a lone voter counted its own entries toward commit before they were durable; its
 *   learner applied them, and a power cut took them from the voter (raft.ts, appendOwn).
 * A change to the simulator's draws moves these runs: find the seeds again the same way.
 *
 * Must never: pass a seed whose run did not change the membership (it would no longer test the fix).
 */

import { describe, expect, it } from 'vitest';
import { runSimulation } from './simulation.js';
import { CI_STEPS } from './seed-batch.js';

describe('simulator seeds that found membership bugs', () => {
  it.each([90, 133, 15, 28, 75, 214])('seed %i keeps every property', async (seed) => {
    const r = await runSimulation({ seed, steps: CI_STEPS });
    expect(r.violation?.detail ?? null).toBeNull();
    expect(r.linearizability).toBe('ok');
    expect(r.coverage.membershipChanges).toBeGreaterThan(0);
  });
});
