/**
 * Majority Quorum arithmetic, kept apart from the protocol so it can grow joint consensus
 * (two configurations that must both agree) without touching the rest of the core.
 *
 * Must never: depend on the order voters are listed in, or count a member outside `voters`.
 */

import type { NodeId } from './types.js';

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters have (High-Water Mark). `matchOf` gives each
 * voter's acknowledged index.
 */
export function majorityIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const matched = voters.map(matchOf).sort((a, b) => b - a);
  return matched[quorumSize(voters.length) - 1]!;
}

export type VoteOutcome = 'won' | 'lost' | 'pending';

/** Tally granted/rejected votes; `votes` holds only voters that answered. */
export function voteOutcome(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  const needed = quorumSize(voters.length);
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  if (granted >= needed) return 'won';
  if (rejected > voters.length - needed) return 'lost';
  return 'pending';
}

export function hasQuorum(voters: readonly NodeId[], members: ReadonlySet<NodeId>): boolean {
  let count = 0;
  for (const id of voters) if (members.has(id)) count++;
  return count >= quorumSize(voters.length);
}
