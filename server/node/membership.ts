/**
 * Where each member of the configuration listens, and keeping the peer transport dialling
 * exactly them. The core decides who the members are (the latest configuration in the log); the
 * peer URLs come from the first members' flags (`--initial-cluster`), from the configuration
 * entries that added the others (seen as they are appended, and in the log at start), and from
 * the replicated member table once those entries are compacted away.
 *
 * Must never: hand the transport a member without a known URL (it waits until one is known);
 * throw into the update loop.
 */

import { decodeConfChange, learnersOf } from '../raft/conf.js';
import type { ConfState, Entry, NodeId } from '../raft/types.js';
import type { StateMachine } from '../state/state-machine.js';
import type { PeerLink } from './runtime-ports.js';

export interface MemberInfo {
  readonly name: NodeId;
  readonly role: 'voter' | 'learner';
  readonly peerUrl: string | null;
  readonly isLeader: boolean;
  /** Entries behind the leader's last index (known on the leader only). */
  readonly lag: number | null;
}

export class Membership {
  /** URLs from the flags and from configuration entries seen (the newest wins). */
  private readonly urls: Map<NodeId, string>;
  /** The members and URLs last handed to the transport, to hand them over only on a change. */
  private handed = '';
  /** URLs learned from configuration entries so far: a new one may change what the transport needs. */
  private learned = 0;
  /** What the last sync looked at: the same again (every turn, nearly always) needs no work. */
  private lastSeen: { conf: ConfState; committed: ConfState; machine: StateMachine; learned: number; table: number } | null = null;

  constructor(
    initial: ReadonlyMap<NodeId, string>,
    private readonly link: Pick<PeerLink, 'setPeers'>,
    private readonly machine: () => StateMachine,
  ) {
    this.urls = new Map(initial);
  }

  /** Configuration entries appended (or found in the log at start): the URLs of members they add. */
  learn(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.type !== 'config') continue;
      const change = decodeConfChange(entry.data);
      if (change?.op === 'addLearner' && change.peerUrl !== undefined) {
        this.urls.set(change.id, change.peerUrl);
        this.learned += 1;
      }
    }
  }

  urlOf(name: NodeId): string | null {
    return this.urls.get(name) ?? this.machine().members.get(name)?.peerUrl ?? null;
  }

  /**
   * The configuration in use now, and the one committed: the transport talks to the members of
   * both. A member leaves the transport only once its removal is committed here — before that
   * it may still be the leader that must hand over (its TimeoutNow must get through).
   */
  sync(conf: ConfState, committed: ConfState): void {
    if (this.link.setPeers === undefined) return;
    // Called every turn of the update loop: the configurations' objects change only with them, a
    // snapshot install brings another state machine, and URLs come from learn() or its table.
    const machine = this.machine();
    const seen = this.lastSeen;
    if (seen !== null && seen.conf === conf && seen.committed === committed && seen.machine === machine && seen.learned === this.learned && seen.table === machine.members.version) return;
    this.lastSeen = { conf, committed, machine, learned: this.learned, table: machine.members.version };
    const peers = new Map<NodeId, string>();
    for (const name of [...new Set([...conf.voters, ...learnersOf(conf), ...committed.voters, ...learnersOf(committed)])].sort()) {
      const url = this.urlOf(name);
      if (url !== null) peers.set(name, url);
    }
    const key = JSON.stringify([...peers]);
    if (key === this.handed) return;
    this.handed = key;
    this.link.setPeers(peers);
  }

  /** Every member of `conf`, with its role, URL and (on the leader) how far behind it is. */
  list(conf: ConfState, leaderId: NodeId | null, lagOf: (name: NodeId) => number | null): MemberInfo[] {
    const role = (name: NodeId): 'voter' | 'learner' => (conf.voters.includes(name) ? 'voter' : 'learner');
    return [...conf.voters, ...learnersOf(conf)].sort().map((name) => ({ name, role: role(name), peerUrl: this.urlOf(name), isLeader: name === leaderId, lag: lagOf(name) }));
  }
}

/** A membership change the core refused as it stands (certainly not applied; the reason says why). */
export class ConfChangeRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ConfChangeRefused';
  }
}
