/**
 * The planted bugs the simulator must catch, by name, for the CLI's --bug flag and the tests
 * that prove the simulator bites.
 *
 * Must never: be reachable from the server's own configuration.
 */

import type { SimOptions } from './simulation.js';
import type { Property } from './invariants.js';

export type PlantedBugName = 'commit-old-term' | 'read-without-quorum' | 'forget-vote' | 'vote-ignores-log' | 'send-before-persist' | 'apply-before-commit' | 'step-before-staged' | 'watch-resume-early' | 'deposed-leader-expires' | 'conf-change-before-term-commit';

export const PLANTED_BUGS: Record<PlantedBugName, { readonly plantedBugs: NonNullable<SimOptions['plantedBugs']>; readonly expected: readonly Property[]; readonly what: string; readonly nodes?: 3 | 4 | 5 }> = {
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
    expected: ['election safety', 'log matching', 'leader completeness', 'state machine safety', 'linearizability'],
    what: 'a member forgets whom it voted for when it restarts',
  },
  'vote-ignores-log': {
    plantedBugs: { voteIgnoresLogCheck: true },
    expected: ['leader completeness', 'state machine safety', 'linearizability'],
    what: "a member grants its vote without checking the candidate's log is up to date",
  },
  'send-before-persist': {
    plantedBugs: { sendBeforeSync: true },
    expected: ['persist before send'],
    what: "the runtime sends a Ready's messages before its WAL sync, even those the persisting contract holds back",
  },
  'apply-before-commit': {
    plantedBugs: { applyBeforeCommit: true },
    expected: ['applied <= committed'],
    what: 'the runtime of a leader applies the entries it appends before they commit',
  },
  'step-before-staged': {
    plantedBugs: { stepBeforeStaged: true },
    expected: ['runtime assertion'],
    what: "the runtime steps a leader's snapshot into the core before its stream is staged whole",
  },
  'watch-resume-early': {
    plantedBugs: { watchResumeOneEarly: true },
    expected: ['watch guarantees'],
    what: 'the watch hub resumes a watch one revision before the one asked for (a revision delivered twice)',
  },
  'deposed-leader-expires': {
    plantedBugs: { deposedLeaderKeepsDeadlines: true },
    expected: ['lease safety'],
    what: "a deposed leader's lease keeper keeps its deadlines and, leading again, expires leases others kept alive",
  },
  'conf-change-before-term-commit': {
    plantedBugs: { confChangeBeforeTermCommit: true },
    expected: ['election safety', 'log matching', 'leader completeness', 'state machine safety', 'linearizability'],
    what: 'a new leader takes a membership change before it has committed an entry of its own term (the single-server change bug)',
    // Two majorities that decide apart need an even number of voters (Ongaro's example has four):
    // a 4-member cluster starts in that shape; 3 and 5 reach it only by a change first.
    nodes: 4,
  },
};
