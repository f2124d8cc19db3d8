/**
 * Fixed Partitions through a Consistent Core (the book's pattern; Kafka's and Helix's
 * controller-written assignments). The key space is cut once into N partitions; the members that
 * serve them come and go. Under `<path>`:
 *   members/<id>  each member's registration (ServiceRegistry: ephemeral, its session's lease);
 *   election/     the members' Election: its leader is the one that assigns;
 *   map           the assignment, written only by the leader, with a txn fenced by its term's
 *                 token (a deposed leader's write is refused) and by the map's version.
 * On every change of membership the leader moves as few partitions as it can: those of departed
 * members, and as few more as balance needs (each member ends with ⌊N/m⌋ or ⌈N/m⌉; the extra
 * ones stay with those that hold most already). Every member follows the map (a read and a watch
 * from its revision) and hears "my partitions" whenever its own set changes.
 *
 * The map is the truth; a member's view lags it by one watch event, so when a partition moves,
 * its old owner may hear of it a moment after its new one: work that must not overlap fences
 * itself with the map's revision (or a Lock) — this recipe says who should serve what.
 *
 * Must never: write the map without the leader's fence; assign a partition to two members, or
 * to one not registered; move a partition whose owner stayed unless balance needs it.
 */

import { cmp, op, WardenError, Emitter, type CallOptions, type Session, type TxnResult, type WardenClient } from '../public.js';
import { Election, type Term } from './election.js';
import { ServiceRegistry, type Registration } from './service-registry.js';
import { backoffMs, childPath, childrenSnapshots, deadline, invariant, pause, type WaitOptions } from './waits.js';

export const PARTITIONS_MAX = 10_000;
const MEMBERS_MAX = 1_000;
/** Tries of one rebalance when the map changed under the leader (only a deposed leader's late write could do that). */
const REBALANCE_TRIES = 5;

/** The assignment: each partition's owner (a member id), or null when there is no member. */
export interface PartitionMap {
  readonly owners: readonly (string | null)[];
  /** The fencing token of the leader's term that wrote it. */
  readonly token: number;
  /** The revision the map was written at. */
  readonly revision: number;
}

export interface PartitionsChange {
  readonly mine: readonly number[];
  readonly added: readonly number[];
  readonly removed: readonly number[];
  readonly map: PartitionMap;
}

export interface PartitionAssignmentEvents extends Record<string, unknown> {
  partitions: PartitionsChange;
  /** A map was read or written: every member hears every map it sees. */
  map: PartitionMap;
  elected: { readonly token: number };
  /** Something failed in the background (the recipe goes on and tries again). */
  error: unknown;
}

export interface PartitionAssignmentOptions {
  /** Where the members, the election and the map live. */
  readonly path: string;
  /** How many partitions (fixed for the life of the path), 1..10,000. */
  readonly partitions: number;
  /** This member's id (unique in the group). */
  readonly id: string;
  readonly session: Session;
  /** What others see of this member in the registry. */
  readonly info?: unknown;
}

/**
 * The fewest moves from `previous` to a balanced assignment of `count` partitions to `members`:
 * partitions of members that are gone, then the surplus of members over their share.
 */
export function assignPartitions(count: number, previous: readonly (string | null)[], members: readonly string[]): (string | null)[] {
  const live = [...new Set(members)].sort();
  if (live.length === 0) return new Array<string | null>(count).fill(null);
  const held = new Map<string, number[]>(live.map((m) => [m, []]));
  const free: number[] = [];
  for (let p = 0; p < count; p++) {
    const owner = previous[p] ?? null;
    const list = owner === null ? undefined : held.get(owner);
    if (list === undefined) free.push(p);
    else list.push(p);
  }
  const base = Math.floor(count / live.length);
  const extra = count % live.length;
  // The members holding most keep the ⌈N/m⌉ shares: fewer partitions leave them.
  const order = [...live].sort((a, b) => held.get(b)!.length - held.get(a)!.length || (a < b ? -1 : 1));
  const share = new Map(order.map((m, i) => [m, base + (i < extra ? 1 : 0)]));
  for (const m of live) {
    const list = held.get(m)!;
    while (list.length > share.get(m)!) free.push(list.pop()!);
  }
  free.sort((a, b) => a - b);
  let next = 0;
  for (const m of order) {
    const list = held.get(m)!;
    while (list.length < share.get(m)!) list.push(free[next++]!);
  }
  invariant(next === free.length, `every free partition is placed (${next} of ${free.length})`);
  const owners = new Array<string | null>(count).fill(null);
  for (const [m, list] of held) for (const p of list) owners[p] = m;
  return owners;
}

function encodeMap(owners: readonly (string | null)[], token: number): string {
  const members = [...new Set(owners.filter((o): o is string => o !== null))].sort();
  const index = new Map(members.map((m, i) => [m, i]));
  return JSON.stringify({ token, members, owners: owners.map((o) => (o === null ? -1 : index.get(o)!)) });
}

function decodeMap(value: string, count: number, revision: number): PartitionMap | null {
  try {
    const wire = JSON.parse(value) as { token: number; members: string[]; owners: number[] };
    if (!Array.isArray(wire.owners) || wire.owners.length !== count || !Array.isArray(wire.members)) return null;
    return { token: wire.token, revision, owners: wire.owners.map((i) => (i < 0 ? null : (wire.members[i] ?? null))) };
  } catch {
    return null;
  }
}

export class PartitionAssignment extends Emitter<PartitionAssignmentEvents> {
  readonly id: string;
  readonly partitions: number;
  private readonly client: WardenClient;
  private readonly session: Session;
  private readonly registry: ServiceRegistry;
  private readonly election: Election;
  private readonly mapPath: string;
  private readonly stopper = new AbortController();
  private registration: Registration | null = null;
  private running: Promise<unknown>[] = [];
  private current: PartitionMap | null = null;
  private owned: number[] = [];

  constructor(
    client: WardenClient,
    private readonly options: PartitionAssignmentOptions,
  ) {
    super();
    if (!Number.isInteger(options.partitions) || options.partitions < 1 || options.partitions > PARTITIONS_MAX) {
      throw new WardenError('INVALID_ARGUMENT', `partitions must be an integer in [1, ${PARTITIONS_MAX}], got ${options.partitions}`);
    }
    this.client = client;
    this.id = options.id;
    this.partitions = options.partitions;
    this.session = options.session;
    this.registry = new ServiceRegistry(client, { root: options.path, session: options.session, membersMax: MEMBERS_MAX });
    this.election = new Election(client, childPath(options.path, 'election'), options.session);
    this.mapPath = childPath(options.path, 'map');
    this.election.on('elected', (term) => this.emit('elected', { token: term.token }));
    options.session.signal.addEventListener('abort', () => this.current !== null && this.seen(this.current), { once: true });
  }

  /** The partitions this member serves, as of the last map it saw. */
  get mine(): readonly number[] {
    return this.owned;
  }

  get map(): PartitionMap | null {
    return this.current;
  }

  get isLeader(): boolean {
    return this.election.isLeader;
  }

  /** Join: register, follow the map, and stand for the election (both in the background until `stop`). */
  async start(call: CallOptions = {}): Promise<void> {
    if (this.registration !== null) return;
    this.registration = await this.registry.register('members', this.id, this.options.info ?? {}, call);
    this.running = [this.followMap(), this.standForLeader()];
  }

  /**
   * Leave: stop following and leading, deregister, then resign — in that order, so the next
   * leader already sees this member gone and moves only its partitions, once.
   */
  async stop(call: CallOptions = {}): Promise<void> {
    this.stopper.abort(new WardenError('UNAVAILABLE', 'the partition member stopped'));
    await Promise.allSettled(this.running);
    try {
      await this.registration?.deregister(call);
    } finally {
      await this.election.resign(call);
    }
  }

  /** Wait (bounded) until this member's view satisfies `until`. */
  async waitUntil(until: (self: PartitionAssignment) => boolean, options: WaitOptions = {}): Promise<void> {
    if (until(this)) return;
    const wait = deadline(options, `partitions of ${this.id}`, [this.stopper.signal]);
    try {
      await new Promise<void>((resolve, reject) => {
        const off = this.on('map', () => {
          if (!until(this)) return;
          off();
          resolve();
        });
        wait.signal.addEventListener('abort', () => (off(), reject(wait.signal.reason)), { once: true });
      });
    } finally {
      wait.done();
    }
  }

  private async followMap(): Promise<void> {
    const signal = this.stopper.signal;
    // Each round ends with an error (or, if ever, quietly): the pause keeps any surprise from spinning.
    for (let round = 0; !signal.aborted && !this.session.signal.aborted; round++) {
      try {
        if (round > 0) await pause(backoffMs(round - 1), signal);
        for await (const { children } of childrenSnapshots(this.client, this.options.path, signal, 16)) {
          const node = children.get('map');
          const map = node === undefined ? null : decodeMap(node.value, this.partitions, node.stat.modRevision);
          if (map !== null && map.revision !== this.current?.revision) this.seen(map);
        }
      } catch (error) {
        if (signal.aborted) return;
        this.emit('error', error);
      }
    }
  }

  private seen(map: PartitionMap): void {
    this.current = map;
    // A member whose session is gone is no member: it serves nothing, whatever the map says yet.
    const mine = this.session.signal.aborted ? [] : map.owners.flatMap((owner, p) => (owner === this.id ? [p] : []));
    const before = new Set(this.owned);
    const after = new Set(mine);
    const added = mine.filter((p) => !before.has(p));
    const removed = this.owned.filter((p) => !after.has(p));
    this.owned = mine;
    if (added.length > 0 || removed.length > 0) this.emit('partitions', { mine, added, removed, map });
    this.emit('map', map);
  }

  private async standForLeader(): Promise<void> {
    const signal = this.stopper.signal;
    let failures = 0;
    while (!signal.aborted && !this.session.signal.aborted) {
      try {
        if (failures > 0) await pause(backoffMs(failures - 1), signal);
        const term = await this.election.campaign(this.id, { signal });
        failures = 0;
        await this.lead(term);
      } catch (error) {
        if (signal.aborted || this.session.signal.aborted) return;
        failures++;
        this.emit('error', error);
      }
    }
  }

  /** While the term lasts: after each change of membership, rebalance. A leader that cannot lead steps down. */
  private async lead(term: Term): Promise<void> {
    const wait = deadline({}, 'lead the partition assignment', [term.signal, this.stopper.signal]);
    try {
      for await (const members of this.registry.watch('members', { signal: wait.signal })) {
        await this.rebalance(members.map((m) => m.id), term, wait.signal);
      }
    } finally {
      wait.done();
      // A resign that fails leaves the node remembered: the next campaign (or stop's resign) deletes it.
      if (!term.signal.aborted && !this.stopper.signal.aborted) await this.election.resign().catch((error: unknown) => this.emit('error', error));
    }
  }

  private async rebalance(members: readonly string[], term: Term, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; attempt < REBALANCE_TRIES; attempt++) {
      const node = await this.client.get(this.mapPath, { signal });
      const previous = node === null ? null : decodeMap(node.value, this.partitions, node.stat.modRevision);
      const owners = assignPartitions(this.partitions, previous?.owners ?? [], members);
      if (previous !== null && owners.every((o, p) => o === previous.owners[p])) return;
      const live = new Set(members);
      invariant(owners.every((o) => o === null || live.has(o)), 'every partition goes to a registered member');
      const write = this.client
        .txn()
        .if(node === null ? cmp.exists(this.mapPath, false) : cmp.version(this.mapPath, '=', node.stat.version))
        .do(op.put(this.mapPath, encodeMap(owners, term.token)));
      let result: TxnResult;
      try {
        result = await this.election.guard(write, term).commit({ signal });
      } catch (error) {
        // Refused whole: the leader's node is gone (the only get in this txn is the fence's).
        if (error instanceof WardenError && error.code === 'NO_NODE') return; // the election hears of it and ends the term
        throw error;
      }
      if (result.succeeded) return;
      const own = result.results[result.results.length - 1];
      if (own?.op !== 'get' || own.node.stat.createRevision !== term.token) return; // the term is over
      // The map changed under us (only a deposed leader's late write could do that): read it again.
    }
    throw new WardenError('UNAVAILABLE', `the map ${this.mapPath} kept changing under the leader`);
  }
}
