/**
 * Cluster configurations as data in the log (Raft thesis §4.1, single-server changes): a
 * `config` entry carries one change — add a learner, promote a learner to voter, remove a
 * member — and every member uses the latest configuration in its log, committed or not,
 * falling back to the one before when a conflicting leader truncates the entry away. The
 * leader accepts a change only once the one before it is committed and it has committed an
 * entry of its own term (Ongaro's 2015 correction), so two configurations in use at once differ
 * by one member and their majorities always overlap.
 *
 * ConfLog follows the configurations of the entries a RaftLog holds: the one at its base (the
 * snapshot's), then one per config entry after it, so the configuration at any index the log
 * holds is known — what a snapshot or a compacted base must record.
 *
 * Must never: read anything but its arguments (a seed replays it); let a member be both voter
 * and learner; leave a configuration without a voter; change a configuration for an entry it
 * cannot decode (it keeps the one before).
 */

import type { ConfState, Entry, NodeId } from './types.js';

/** `peerUrl`: where the added member listens for its peers — carried for the caller (the core ignores it). */
export type ConfChange = { readonly op: 'addLearner'; readonly id: NodeId; readonly peerUrl?: string } | { readonly op: 'promote'; readonly id: NodeId } | { readonly op: 'remove'; readonly id: NodeId };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const NAME = /^[\x21-\x7e]{1,128}$/;

export function encodeConfChange(change: ConfChange): Uint8Array {
  const peerUrl = change.op === 'addLearner' ? change.peerUrl : undefined;
  return encoder.encode(JSON.stringify({ op: change.op, id: change.id, ...(peerUrl === undefined ? {} : { peerUrl }) }));
}

/** The change an entry's bytes hold, or null if they hold none a member could apply. */
export function decodeConfChange(data: Uint8Array): ConfChange | null {
  let fields: unknown;
  try {
    fields = JSON.parse(decoder.decode(data));
  } catch {
    return null;
  }
  const { op, id, peerUrl } = (fields ?? {}) as Record<string, unknown>;
  if ((op !== 'addLearner' && op !== 'promote' && op !== 'remove') || typeof id !== 'string' || !NAME.test(id)) return null;
  if (peerUrl !== undefined && (op !== 'addLearner' || typeof peerUrl !== 'string' || peerUrl.length === 0 || peerUrl.length > 1024)) return null;
  return op === 'addLearner' && typeof peerUrl === 'string' ? { op, id, peerUrl } : { op, id };
}

/** The learners of a configuration (a configuration from before learners existed has none). */
export function learnersOf(conf: ConfState): readonly NodeId[] {
  return conf.learners ?? [];
}

/** Voters and learners, sorted: every member the leader replicates to. */
export function membersOf(conf: ConfState): NodeId[] {
  return [...conf.voters, ...learnersOf(conf)].sort();
}

/** Why `change` cannot apply to `conf`, or null if it can. */
export function confChangeProblem(conf: ConfState, change: ConfChange): string | null {
  const voter = conf.voters.includes(change.id);
  const learner = learnersOf(conf).includes(change.id);
  switch (change.op) {
    case 'addLearner':
      return voter || learner ? `${change.id} is a member already` : null;
    case 'promote':
      return learner ? null : `${change.id} is not a learner`;
    case 'remove':
      if (!voter && !learner) return `${change.id} is not a member`;
      return voter && conf.voters.length === 1 ? `${change.id} is the last voter` : null;
  }
}

/** `conf` after `change` (which must apply: see confChangeProblem). */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = conf.voters.filter((v) => v !== change.id);
  const learners = learnersOf(conf).filter((l) => l !== change.id);
  if (change.op === 'addLearner') learners.push(change.id);
  if (change.op === 'promote') voters.push(change.id);
  return shaped(voters, learners);
}

/** The configuration after the config entry `entry`, given the one before it. */
function after(conf: ConfState, entry: Entry): ConfState {
  const change = decodeConfChange(entry.data);
  if (change === null || confChangeProblem(conf, change) !== null) return conf;
  return applyConfChange(conf, change);
}

/** The configurations of a log: at its base, and from each config entry on. */
export class ConfLog {
  private base: ConfState;
  /** Config entries after the base, in index order, with the configuration each makes. */
  private changes: { readonly index: number; readonly conf: ConfState }[] = [];

  constructor(base: ConfState, entries: readonly Entry[]) {
    this.base = normalized(base);
    this.appended(entries);
  }

  /** The latest configuration: the one the member uses. */
  get latest(): ConfState {
    return this.changes.at(-1)?.conf ?? this.base;
  }

  /** The index of the latest config entry after the base, or 0 if there is none. */
  get latestIndex(): number {
    return this.changes.at(-1)?.index ?? 0;
  }

  /** The configuration in force at `index` (the latest at or below it). */
  at(index: number): ConfState {
    for (let i = this.changes.length - 1; i >= 0; i--) if (this.changes[i]!.index <= index) return this.changes[i]!.conf;
    return this.base;
  }

  appended(entries: readonly Entry[]): void {
    for (const entry of entries) if (entry.type === 'config') this.changes.push({ index: entry.index, conf: after(this.latest, entry) });
  }

  /** Entries from `index` on were dropped (a conflicting leader's log replaces them). */
  truncatedFrom(index: number): void {
    while (this.changes.length > 0 && this.changes.at(-1)!.index >= index) this.changes.pop();
  }

  /** The log's base moved up to `index` (compaction): the configuration there is the new base. */
  compactedTo(index: number): void {
    this.base = this.at(index);
    this.changes = this.changes.filter((c) => c.index > index);
  }

  /** The log was replaced by a snapshot whose configuration is `conf`. */
  restored(conf: ConfState): void {
    this.base = normalized(conf);
    this.changes = [];
  }
}

function normalized(conf: ConfState): ConfState {
  return shaped([...conf.voters], [...learnersOf(conf)]);
}

/** Sorted, and without a `learners` field when there are none (the shape from before learners). */
function shaped(voters: NodeId[], learners: NodeId[]): ConfState {
  voters.sort();
  learners.sort();
  return learners.length === 0 ? { voters } : { voters, learners };
}
