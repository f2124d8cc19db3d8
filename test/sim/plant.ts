/**
 * The planted bugs the simulator must catch, by name, for the CLI's --bug flag and the tests
 * that prove the simulator bites.
 *
 * Must never: be reachable from the server's own configuration.
 */

import type { SimOptions } from './simulation.js';
import type { Property } from './invariants.js';

export type PlantedBugName = 'commit-old-term' | 'read-without-quorum' | 'forget-vote' | 'vote-ignores-log' | 'send-before-persist';

export const PLANTED_BUGS: Record<PlantedBugName, { readonly plantedBugs: NonNullable<SimOptions['plantedBugs']>; readonly expected: readonly Property[]; readonly what: string }> = {
  'commit-old-term': {
    plantedBugs: { commitOldTermEntries: true },
    expected: ['leader completeness', 'state machine safety', 'linearizability'],
    what: 'a leader counts replicas of an older-term entry toward commit (Raft Figure 8)',
  },
  'read-without-quorum': {
    plantedBugs: { readIndexWithoutQuorum: true },
    expected: ['linearizability'],
    what: 'a leader answers ReadIndex without a heartbeat round confirming it still leads',
  },
  'forget-vote': {
    plantedBugs: { forgetVoteOnRestart: true },
    expected: ['election safety', 'leader completeness', 'state machine safety', 'linearizability'],
    what: 'a member forgets whom it voted for when it restarts',
  },
  'vote-ignores-log': {
    plantedBugs: { voteIgnoresLogCheck: true },
    expected: ['leader completeness', 'state machine safety', 'linearizability'],
    what: "a member grants its vote without checking the candidate's log is up to date",
  },
  'send-before-persist': {
    plantedBugs: { sendBeforePersist: true },
    expected: ['persist before send'],
    what: "a member sends a Ready's messages before its hard state and entries are durable",
  },
};
