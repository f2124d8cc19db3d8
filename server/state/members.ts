/**
 * The members the cluster has added and removed, as replicated state: each added member's name,
 * the peer URL it was added with and its role (learner until promoted), and the names of removed
 * members, which are never used again (a new machine in an old member's place joins under a new
 * name, so a stale process of the old one can never pass for it). It follows the configuration
 * entries of the log, applied in order — the Raft core decides what the configuration is; this
 * table remembers where its members listen once the entries that said so are compacted away.
 * The first members (from `--initial-cluster`) are not in it: every member has their URLs from
 * its flags.
 *
 * Must never: read a clock or randomness; refuse a change the log committed (the core checked
 * it: this table follows); forget a removed name.
 */

import type { ChangeTracker } from './changes.js';

export type MemberRole = 'voter' | 'learner';

export interface MemberRecord {
  readonly name: string;
  /** The peer URL it was added with (null: one of the first members, promoted or removed by name). */
  readonly peerUrl: string | null;
  readonly role: MemberRole;
}

export interface MembersImage {
  readonly members: readonly MemberRecord[];
  readonly removed: readonly string[];
}

/** A configuration change as the state machine applies it (the node runtime makes it from a config entry). */
export interface MemberChangeCommand {
  readonly op: 'memberChange';
  readonly change: 'addLearner' | 'promote' | 'remove';
  readonly name: string;
  readonly peerUrl?: string;
}

export class MemberTable {
  private readonly members = new Map<string, MemberRecord>();
  private readonly removed = new Set<string>();

  constructor(private readonly changes: ChangeTracker | null = null) {}

  static restore(image: MembersImage, changes: ChangeTracker | null = null): MemberTable {
    const table = new MemberTable(changes);
    for (const member of image.members) table.members.set(member.name, member);
    for (const name of image.removed) table.removed.add(name);
    return table;
  }

  get(name: string): MemberRecord | undefined {
    return this.members.get(name);
  }

  /** Whether `name` belonged to a member that was removed (it is never used again). */
  wasRemoved(name: string): boolean {
    return this.removed.has(name);
  }

  image(): MembersImage {
    const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    return { members: [...this.members.values()].sort((a, b) => byName(a.name, b.name)), removed: [...this.removed].sort(byName) };
  }

  get empty(): boolean {
    return this.members.size === 0 && this.removed.size === 0;
  }

  /** Changes applied so far (a reader notices a change without comparing tables). */
  get version(): number {
    return this.applied;
  }

  private applied = 0;

  apply(command: MemberChangeCommand): void {
    this.applied += 1;
    const known = this.members.get(command.name);
    switch (command.change) {
      case 'addLearner':
        this.members.set(command.name, { name: command.name, peerUrl: command.peerUrl ?? null, role: 'learner' });
        break;
      case 'promote':
        this.members.set(command.name, { name: command.name, peerUrl: known?.peerUrl ?? null, role: 'voter' });
        break;
      case 'remove':
        this.members.delete(command.name);
        this.removed.add(command.name);
        break;
    }
    if (this.changes !== null) this.changes.members = true;
  }
}
