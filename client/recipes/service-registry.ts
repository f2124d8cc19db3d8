/**
 * Service registry (Curator's ServiceDiscovery, etcd's endpoints manager; the book's Consistent
 * Core keeping group membership). A member registers as an ephemeral node
 * `<root>/<group>/<id>` under its Session's lease, its value the member's info as JSON: it is a
 * member exactly as long as its session lives. `members(group)` is one linearizable read;
 * `watch(group)` yields the whole membership, first as read and then after every revision that
 * changed it (a read at one revision and the children watch from that revision: no change is
 * missed, none is shown twice, and it carries on across members and compactions by itself).
 *
 * Must never: show a membership that no revision had; keep a member whose node is gone; take
 * over an id another session holds; hold more than `membersMax` members of a group.
 */

import { WardenError, type CallOptions, type Session, type WardenClient, type WardenNode } from '../public.js';
import { childPath, childrenSnapshots, deadline, invariant, nameOf, parentPathOf } from './waits.js';

const NAME_PATTERN = /^[A-Za-z0-9._:@-]{1,200}$/;

export interface Member<T = unknown> {
  readonly id: string;
  readonly info: T;
  readonly path: string;
  /** The revision that registered it (a member that re-registers after losing its session has a new one). */
  readonly registeredRevision: number;
}

export interface ServiceRegistryOptions {
  /** Where groups live (default `/services`). */
  readonly root?: string;
  /** The session members registered through this registry live with (needed by `register`). */
  readonly session?: Session;
  /** Members of a group, at most (reads and watches past it fail RESOURCE_EXHAUSTED). Default 10,000. */
  readonly membersMax?: number;
}

/** One member's registration: update its info, or deregister. */
export class Registration<T = unknown> {
  constructor(
    private readonly client: WardenClient,
    readonly group: string,
    readonly id: string,
    readonly path: string,
    private readonly lease: number,
  ) {}

  /** Replace this member's info (refused NO_NODE once the registration is gone). */
  async update(info: T, call: CallOptions = {}): Promise<void> {
    const node = await this.client.get(this.path, call);
    if (node === null || node.stat.lease !== this.lease) throw new WardenError('NO_NODE', `${this.path} is no longer this session's registration`);
    await this.client.put(this.path, JSON.stringify(info), { ifVersion: node.stat.version, ...call });
  }

  async deregister(call: CallOptions = {}): Promise<void> {
    const node = await this.client.get(this.path, call);
    if (node === null || node.stat.lease !== this.lease) return;
    await this.client.delete(this.path, { ifVersion: node.stat.version, ...call }).catch((error: unknown) => {
      if (!(error instanceof WardenError && (error.code === 'NO_NODE' || error.code === 'BAD_VERSION'))) throw error;
    });
  }
}

export class ServiceRegistry {
  readonly root: string;
  private readonly session: Session | undefined;
  private readonly membersMax: number;

  constructor(
    private readonly client: WardenClient,
    options: ServiceRegistryOptions = {},
  ) {
    this.root = options.root ?? '/services';
    this.session = options.session;
    this.membersMax = options.membersMax ?? 10_000;
  }

  groupPath(group: string): string {
    checkName('group', group);
    return childPath(this.root, group);
  }

  /** Register `id` in `group` with `info` (JSON) for as long as the session lives. Registering again under the same session updates the info. */
  async register<T>(group: string, id: string, info: T, call: CallOptions = {}): Promise<Registration<T>> {
    const session = this.session;
    if (session === undefined) throw new WardenError('INVALID_ARGUMENT', 'register needs a ServiceRegistry made with a session');
    checkName('id', id);
    const path = childPath(this.groupPath(group), id);
    const value = JSON.stringify(info);
    // A node of ours already there (registering again) is updated; one that goes between the create and the read is made again.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.client.create(path, value, { lease: session.lease, parents: true, ...call });
        return new Registration<T>(this.client, group, id, path, session.lease);
      } catch (error) {
        if (!(error instanceof WardenError && error.code === 'NODE_EXISTS')) throw error;
      }
      const node = await this.client.get(path, call);
      if (node === null) continue;
      if (node.stat.lease !== session.lease) throw new WardenError('NODE_EXISTS', `${id} is registered in ${group} by another session`);
      await this.client.put(path, value, { ifVersion: node.stat.version, ...call });
      return new Registration<T>(this.client, group, id, path, session.lease);
    }
    throw new WardenError('UNAVAILABLE', `${path} kept appearing and vanishing; not registered`);
  }

  /** The members of `group` now, in id order. */
  async members<T = unknown>(group: string, call: CallOptions = {}): Promise<Member<T>[]> {
    const groupPath = this.groupPath(group);
    const nodes: WardenNode[] = [];
    for await (const node of this.client.range(groupPath, call)) {
      if (parentPathOf(node.path) !== groupPath) continue;
      if (nodes.length >= this.membersMax) throw new WardenError('RESOURCE_EXHAUSTED', `${groupPath} has more than ${this.membersMax} members`);
      nodes.push(node);
    }
    return membersOf<T>(nodes);
  }

  /**
   * The whole membership of `group` now, then after each change (a join, a leave, an info
   * update), in revision order. Ends when `signal` aborts or the loop breaks.
   */
  async *watch<T = unknown>(group: string, options: { readonly signal?: AbortSignal } = {}): AsyncGenerator<Member<T>[], void, undefined> {
    const groupPath = this.groupPath(group);
    const stop = new AbortController();
    const wait = deadline({}, `watch ${groupPath}`, options.signal === undefined ? [stop.signal] : [stop.signal, options.signal]);
    let lastRevision = -1;
    try {
      for await (const { revision, children } of childrenSnapshots(this.client, groupPath, wait.signal, this.membersMax)) {
        invariant(revision > lastRevision, `membership revisions go forward (${revision} after ${lastRevision})`);
        lastRevision = revision;
        yield membersOf<T>(children.values());
      }
    } finally {
      stop.abort();
      wait.done();
    }
  }
}

function membersOf<T>(nodes: Iterable<WardenNode>): Member<T>[] {
  const members: Member<T>[] = [];
  for (const node of nodes) {
    let info: T;
    try {
      info = JSON.parse(node.value) as T;
    } catch {
      continue; // not a registration (a node someone wrote by hand): not a member
    }
    members.push({ id: nameOf(node.path), info, path: node.path, registeredRevision: node.stat.createRevision });
  }
  return members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function checkName(what: string, name: string): void {
  if (!NAME_PATTERN.test(name)) throw new WardenError('INVALID_ARGUMENT', `a ${what} is 1–200 of [A-Za-z0-9._:@-], got ${JSON.stringify(name)}`);
}
