/**
 * The client library's front: `connect()` and the `WardenClient` users call. Each method turns
 * its arguments into a protocol frame (shared/protocol.ts), sends it through `Requests` — reads
 * retried freely, writes exactly once through the client's session — and turns the answer into
 * typed values. One WebSocket to one member at a time (Single-Socket Channel), requests
 * pipelined; watches and sessions carry on across a change of member by themselves. With `auth`,
 * every socket authenticates before it carries anything else (auth.ts); `client.auth`,
 * `client.users` and `client.roles` administer auth, `client.members` the membership (members.ts).
 *
 * Must never: import server/ or a Node builtin (the Node and browser entries pass the socket
 * in); throw anything but a WardenError for a refused or failed call.
 */

import { WardenError } from '../shared/errors.js';
import { AuthAdmin, Authenticator, RoleAdmin, UserAdmin, type AuthCredentials } from './auth.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { Channel, QUEUED_MAX_DEFAULT, type Answer, type ClientLogger } from './channel.js';
import { LeaseKeeper, type LeaseInfo, type LeaseTimeToLive, type Session } from './leases.js';
import { MemberAdmin, type AlarmInfo } from './members.js';
import { Requests, type CallOptions } from './requests.js';
import { downloadSnapshot, type SnapshotDownload, type SnapshotOptions } from './snapshot.js';
import { REAL_CLOCK, type ClientClock, type OpenSocket } from './transport.js';
import { TxnBuilder, type CreateOptions, type DeleteOptions, type PutOptions } from './txn.js';
import { decodeNode, encodeValue, type Stat, type Value, type ValueAs, type ValueOf, type WardenNode } from './values.js';
import { Watch, WatchRegistry, type WatchOptions } from './watch.js';

export interface ConnectOptions {
  /** Members' client URLs (`ws://host:7071`), as an array or a comma-separated string. */
  readonly endpoints: readonly string[] | string;
  /** A call's deadline, retries included (default 10,000 ms); each call may set its own. */
  readonly timeoutMs?: number;
  /** A member that answers nothing for this long, with a request waiting, is left for another (default 2,000 ms). */
  readonly attemptTimeoutMs?: number;
  /** Requests on the socket at once (default 512); more wait in the client. */
  readonly maxInFlight?: number;
  /** Requests that may wait in the client for a socket (default 100,000); more are refused RESOURCE_EXHAUSTED, unsent. */
  readonly maxQueued?: number;
  /** A pino logger (or anything with `debug` and `warn`): connection changes are logged. */
  readonly logger?: ClientLogger;
  /** Aborting it closes the client. */
  readonly signal?: AbortSignal;
  readonly backoff?: BackoffPolicy;
  /**
   * For `wss://` endpoints under Node: the CA that signed the members' certificates (PEM), and a
   * client certificate and key if the cluster asks for one. (A browser uses its own trust store.)
   */
  readonly tls?: ClientTls;
  /**
   * Once the cluster has auth on: a user and password, or a token an earlier authentication
   * answered (`client.auth.token`). Every new socket authenticates before anything else goes out
   * on it; with a password, an identity that lapsed (the token TTL, a changed password) is
   * renewed by itself. A client certificate naming a user (`tls.cert`) needs none.
   */
  readonly auth?: AuthCredentials;
  /** @internal tests: a fake clock and randomness. */
  readonly clock?: ClientClock;
  readonly random?: () => number;
}

export interface ClientTls {
  readonly ca?: string | Uint8Array;
  readonly cert?: string | Uint8Array;
  readonly key?: string | Uint8Array;
}

export type Consistency = 'linearizable' | 'serializable';

export interface ReadOptions<A extends ValueAs = 'string'> extends CallOptions {
  /** `string` (UTF-8, the default) or `bytes` (Uint8Array). */
  readonly as?: A;
  /** Linearizable (the default) or serializable: from the member's own state, never older than what this client saw. */
  readonly consistency?: Consistency;
}

export interface GetOptions<A extends ValueAs = 'string'> extends ReadOptions<A> {
  /** Read the node as it was at this revision (until history is compacted). */
  readonly revision?: number;
}

export interface RangeOptions<A extends ValueAs = 'string'> extends ReadOptions<A> {
  /** Nodes per page (default 1,000; the member also ends a page at its answer bound). */
  readonly pageSize?: number;
  /** Read the subtree as it was at this revision (default: the revision of the first page, so all pages agree). */
  readonly revision?: number;
}

export interface WriteResult {
  readonly revision: number;
  readonly path: string;
  readonly stat: Stat;
}

export interface PutResult<V = string> extends WriteResult {
  /** The node before the put (with its value), when asked with `prevNode: true`; null if it was created. */
  readonly prevNode?: WardenNode<V> | null;
}

export type TxnOpResult =
  | { readonly op: 'create'; readonly path: string; readonly stat: Stat }
  | { readonly op: 'put'; readonly path: string; readonly stat: Stat; readonly prevStat: Stat | null }
  | { readonly op: 'delete'; readonly deleted: number }
  | { readonly op: 'get'; readonly node: WardenNode<string>; readonly bytes: Uint8Array };

export interface TxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
  readonly results: readonly TxnOpResult[];
}

export interface MemberStatus extends Record<string, unknown> {
  readonly name: string;
  readonly leader: string | null;
  readonly revision: number;
}

/** A connected client. Every method takes `signal` and `timeoutMs`; every failure is a WardenError. */
export class WardenClient {
  private readonly channel: Channel;
  private readonly requests: Requests;
  private readonly watches: WatchRegistry;
  private readonly keeper: LeaseKeeper;
  private closed = false;
  private probeTimer: unknown = null;
  private readonly clock: ClientClock;
  private readonly attemptTimeoutMs: number;
  /** Auth on or off, and who this client is. */
  readonly auth: AuthAdmin;
  /** Users: add, delete, set passwords, grant and revoke roles, list. */
  readonly users: UserAdmin;
  /** Roles: add, delete, grant and revoke access on paths, list. */
  readonly roles: RoleAdmin;
  /** Members: list, add (as a learner, or promoted once caught up), promote, remove. */
  readonly members: MemberAdmin;

  /** @internal use `connect()`. */
  constructor(options: ConnectOptions, open: OpenSocket) {
    const endpoints = typeof options.endpoints === 'string' ? options.endpoints.split(',').map((e) => e.trim()).filter((e) => e !== '') : [...options.endpoints];
    const clock = options.clock ?? REAL_CLOCK;
    const random = options.random ?? Math.random;
    // Start at a random member, so many clients spread over the cluster.
    const start = Math.floor(random() * endpoints.length);
    const rotated = [...endpoints.slice(start), ...endpoints.slice(0, start)];
    const authenticator = options.auth === undefined ? null : new Authenticator(options.auth);
    this.channel = new Channel({
      endpoints: rotated,
      open,
      clock,
      random,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      attemptTimeoutMs: options.attemptTimeoutMs ?? 2_000,
      maxInFlight: options.maxInFlight ?? 512,
      maxQueued: options.maxQueued ?? QUEUED_MAX_DEFAULT,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(authenticator === null ? {} : { handshake: authenticator }),
      onPush: (frame) => this.watches.push(frame),
      onConnected: () => {
        this.watches.connected();
        this.keeper.connected();
      },
    });
    this.requests = new Requests({ channel: this.channel, clock, random, backoff: options.backoff ?? DEFAULT_BACKOFF, timeoutMs: options.timeoutMs ?? 10_000, ...(options.logger === undefined ? {} : { logger: options.logger }) });
    this.watches = new WatchRegistry(this.channel, this.requests, clock);
    this.keeper = new LeaseKeeper(this.requests, clock);
    this.auth = new AuthAdmin(this.requests, authenticator);
    this.users = new UserAdmin(this.requests, authenticator);
    this.roles = new RoleAdmin(this.requests);
    this.members = new MemberAdmin(this.requests, options.timeoutMs ?? 10_000);
    this.channel.wantConnection = () => this.watches.live.size > 0 || this.keeper.size > 0;
    this.clock = clock;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 2_000;
    this.probe();
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /**
   * A client that only watches sends nothing after subscribing, so a frozen member would keep it
   * forever: when its member has been silent for half the attempt deadline, ask for a bookmark
   * (`watchProgress`) — a member that does not answer within the attempt deadline is left, and the
   * bookmark moves each watch's resume point on.
   */
  private probe(): void {
    const half = Math.max(1, Math.floor(this.attemptTimeoutMs / 2));
    this.probeTimer = this.clock.setTimeout(() => {
      if (this.closed) return;
      if (this.watches.live.size > 0 && this.channel.url !== null && this.channel.silentForMs() >= half) {
        this.channel.request({ type: 'watchProgress' }, this.clock.now() + 2 * this.attemptTimeoutMs, { urgent: true }).catch(() => undefined);
      }
      this.probe();
    }, half);
  }

  /** The highest revision this client has seen: its reads never see older state. */
  get revision(): number {
    return this.requests.highestRevision;
  }

  /** The member the client speaks to now (null between members). */
  get endpoint(): string | null {
    return this.channel.url;
  }

  /** Create a node; `sequential` appends a counter to its name (the result has the path made). */
  async create(path: string, value: Value = '', options: CreateOptions & CallOptions = {}): Promise<WriteResult> {
    const { signal, timeoutMs, ...fields } = options;
    const answer = await this.write({ type: 'create', path, value: encodeValue(value), ...fields }, { signal, timeoutMs });
    const node = answer['node'] as { path: string; stat: Stat };
    return { revision: answer['revision'] as number, path: (answer['path'] as string | undefined) ?? node.path, stat: node.stat };
  }

  /** Set a node's value, creating it if needed; `ifVersion` makes it a compare-and-set. */
  async put<A extends ValueAs = 'string'>(path: string, value: Value, options: PutOptions & CallOptions & { readonly prevNode?: boolean; readonly as?: A } = {}): Promise<PutResult<ValueOf<A>>> {
    const { signal, timeoutMs, as, ...fields } = options;
    const answer = await this.write({ type: 'put', path, value: encodeValue(value), ...fields }, { signal, timeoutMs });
    const node = answer['node'] as { path: string; stat: Stat };
    const prev = answer['prevNode'];
    return {
      revision: answer['revision'] as number,
      path: node.path,
      stat: node.stat,
      ...(options.prevNode === true ? { prevNode: prev === null || prev === undefined ? null : decodeNode(prev, (as ?? 'string') as A) } : {}),
    };
  }

  /** Delete a node (`recursive`: and its descendants); answers how many nodes were deleted. */
  async delete(path: string, options: DeleteOptions & CallOptions = {}): Promise<{ readonly revision: number; readonly deleted: number }> {
    const { signal, timeoutMs, ...fields } = options;
    const answer = await this.write({ type: 'delete', path, ...fields }, { signal, timeoutMs });
    return { revision: answer['revision'] as number, deleted: answer['deleted'] as number };
  }

  /** A node, or null if it does not exist (now, or at `revision`). */
  async get<A extends ValueAs = 'string'>(path: string, options: GetOptions<A> = {}): Promise<WardenNode<ValueOf<A>> | null> {
    try {
      const answer = await this.requests.read({ type: 'get', path, ...this.readFields(options), ...(options.revision === undefined ? {} : { revision: options.revision }) }, options);
      return decodeNode(answer['node'], (options.as ?? 'string') as A);
    } catch (error) {
      if (error instanceof WardenError && error.code === 'NO_NODE') return null;
      throw error;
    }
  }

  /** A node's child names, in order (every page of them). NO_NODE if the node does not exist. */
  async children(path: string, options: ReadOptions & { readonly limit?: number } = {}): Promise<string[]> {
    const names: string[] = [];
    let after: string | null = null;
    do {
      const answer = await this.requests.read({ type: 'children', path, ...this.readFields(options), ...(after === null ? {} : { after }) }, options);
      names.push(...(answer['names'] as string[]));
      after = answer['next'] as string | null;
      if (options.limit !== undefined && names.length >= options.limit) return names.slice(0, options.limit);
    } while (after !== null);
    return names;
  }

  /** The nodes strictly below `path` (not the node itself), in path order, a page at a time, all at one revision. */
  async *range<A extends ValueAs = 'string'>(path: string, options: RangeOptions<A> = {}): AsyncGenerator<WardenNode<ValueOf<A>>, void, undefined> {
    let revision = options.revision;
    let after: string | null = null;
    const as = (options.as ?? 'string') as A;
    do {
      const answer: Answer = await this.requests.read(
        { type: 'range', path, limit: options.pageSize ?? 1_000, ...this.readFields(options), ...(revision === undefined ? {} : { revision }), ...(after === null ? {} : { after }) },
        options,
      );
      revision ??= answer['revision'] as number;
      for (const node of answer['nodes'] as unknown[]) yield decodeNode(node, as);
      after = answer['next'] as string | null;
    } while (after !== null);
  }

  /** A transaction: `.if(cmp...)`, `.do(op...)`, `.else(op...)`, then `.commit()`. */
  txn(): TxnBuilder<TxnResult> {
    return new TxnBuilder(async (frame, signal, timeoutMs) => {
      const answer = await this.write(frame, { signal, timeoutMs });
      return {
        succeeded: answer['succeeded'] as boolean,
        revision: answer['revision'] as number,
        results: (answer['results'] as Record<string, unknown>[]).map((r): TxnOpResult => {
          const node = r['node'] as { path: string; stat: Stat; value?: string } | undefined;
          switch (r['op']) {
            case 'create':
              return { op: 'create', path: (r['path'] as string | undefined) ?? node!.path, stat: node!.stat };
            case 'put':
              return { op: 'put', path: node!.path, stat: node!.stat, prevStat: (r['prevNode'] as { stat: Stat } | null | undefined)?.stat ?? null };
            case 'delete':
              return { op: 'delete', deleted: r['deleted'] as number };
            default:
              return { op: 'get', node: decodeNode(node, 'string'), bytes: decodeNode(node, 'bytes').value };
          }
        }),
      };
    });
  }

  /** Forget history at or below `revision` (reads and watches below it answer COMPACTED). */
  async compact(revision: number, call: CallOptions = {}): Promise<{ readonly revision: number; readonly compactRevision: number }> {
    try {
      const answer = await this.requests.read({ type: 'compact', revision }, call, { idempotent: true });
      return { revision: answer['revision'] as number, compactRevision: answer['compactRevision'] as number };
    } catch (error) {
      // Already compacted past it (perhaps by an earlier try of this very call, whose answer was
      // lost): what was asked for holds, so a retried compact is not an error.
      if (error instanceof WardenError && error.code === 'COMPACTED') return { revision: this.requests.highestRevision, compactRevision: revision };
      throw error;
    }
  }

  /**
   * A consistent snapshot of the store of the member this client is connected to, for a backup:
   * its chunks are pulled in order over this connection (`warden snapshot save` writes them to a
   * file that `warden snapshot restore` turns into a new cluster's data).
   */
  snapshot(options: SnapshotOptions = {}): Promise<SnapshotDownload> {
    return downloadSnapshot(this.requests, options);
  }

  /** The cluster's active alarms (NO_SPACE: past the space quota; it clears by itself once back under). */
  async alarms(call: CallOptions = {}): Promise<AlarmInfo[]> {
    const answer = await this.requests.read({ type: 'alarmList' }, call);
    return answer['alarms'] as AlarmInfo[];
  }

  /** The status of the member the client is connected to. */
  async status(call: CallOptions = {}): Promise<MemberStatus> {
    const answer = await this.requests.read({ type: 'status' }, call);
    return answer['status'] as MemberStatus;
  }

  /** Leases by hand: granted with an id the client picks, so a retried grant is the same lease. */
  readonly leases = {
    grant: (ttlMs: number, call: CallOptions & { readonly id?: number } = {}): Promise<LeaseInfo> => this.keeper.grant(ttlMs, call),
    revoke: (lease: number, call: CallOptions = {}): Promise<void> => this.keeper.revoke(lease, call),
    timeToLive: async (lease: number, call: CallOptions & { readonly paths?: boolean } = {}): Promise<LeaseTimeToLive> => {
      const answer = await this.requests.read({ type: 'leaseTimeToLive', lease, ...(call.paths === true ? { paths: true } : {}) }, call);
      const info = answer['lease'] as LeaseTimeToLive;
      return { id: info.id, ttlMs: info.ttlMs, remainingMs: info.remainingMs, ...(answer['paths'] === undefined ? {} : { paths: answer['paths'] as string[] }) };
    },
    /** Every lease in the cluster, in id order (a page of up to 10,000 at a time); with auth on, a user without admin on / sees its own. */
    list: async (call: CallOptions = {}): Promise<LeaseInfo[]> => {
      const leases: LeaseInfo[] = [];
      let after: number | null = 0;
      while (after !== null) {
        const answer = await this.requests.read({ type: 'leaseList', after }, call);
        leases.push(...(answer['leases'] as LeaseInfo[]));
        after = answer['next'] as number | null;
      }
      return leases;
    },
  };

  /**
   * A lease kept alive while the session is open: ephemeral nodes made with its `lease` live as
   * long. With `id`, the session adopts that lease (granting it with that id if it is gone): how
   * a process keeps alive a lease it was handed.
   */
  session(options: { readonly ttlMs?: number; readonly id?: number } & CallOptions = {}): Promise<Session> {
    return this.keeper.session(options.ttlMs ?? 10_000, options);
  }

  /** Watch a node, its children or its subtree: events in revision order, resumed across members by themselves. */
  watch<A extends ValueAs = 'string'>(path: string, options: WatchOptions<A> = {}): Watch<ValueOf<A>> {
    if (this.closed) throw new WardenError('UNAVAILABLE', 'the client is closed');
    return new Watch<ValueOf<A>>(this.watches, path, options);
  }

  /** Close the socket; watches end, kept leases are no longer kept (they expire after their TTL). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer !== null) this.clock.clearTimeout(this.probeTimer);
    for (const watch of [...this.watches.live]) await watch.cancel();
    this.keeper.close();
    this.requests.close();
    this.channel.close();
  }

  private readFields(options: ReadOptions<ValueAs>): Record<string, unknown> {
    if (options.consistency !== 'serializable') return {};
    // Never older than what this client has seen (read-your-writes across a change of member).
    return { consistency: 'serializable', minRevision: this.requests.highestRevision };
  }

  private write(frame: Record<string, unknown>, call: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined }): Promise<Answer> {
    if (this.closed) return Promise.reject(new WardenError('UNAVAILABLE', 'the client is closed'));
    return this.requests.write(frame, { ...(call.signal === undefined ? {} : { signal: call.signal }), ...(call.timeoutMs === undefined ? {} : { timeoutMs: call.timeoutMs }) });
  }
}
