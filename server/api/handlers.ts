/**
 * What each client request does, once its frame passed its schema. A write is checked whole
 * against the member's limits and the state machine's own rules before it is proposed — sizes,
 * shapes, canonical base64 — so nothing that will be refused is ever replicated; it is then
 * proposed through the runtime (forwarded to the leader by a follower), carrying the limits the
 * state machine must apply alike on every member. Reads are served linearizably by default,
 * serializably on request, or serializably once this member has reached the revision the client
 * carries (read-your-writes), and none answers more than the answer bound.
 *
 * Answers are JSON: bytes as base64; errors carry a code from shared/, what the client may do
 * next (`outcome`), the limit passed (name, flag, value) when that is why, and for NOT_LEADER
 * the leader's name and client URL when known.
 *
 * Must never: throw for a refused request (it answers an error); serve a linearizable read
 * before the member has applied the confirmed read index; answer "retry" for a write that may
 * have been applied.
 */

import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '../../shared/errors.js';
import { ANSWER_BYTES_MAX_DEFAULT, WRITE_NODES_MAX_DEFAULT, WRITE_PATH_BYTES_MAX_DEFAULT, type RequestType } from '../../shared/protocol.js';
import { checkPath } from '../../shared/paths.js';
import { jsonStringBytes, nodeWireBytes } from '../../shared/wire-size.js';
import { answerBytes, pick, txnFromWire, txnWithoutValues, withoutValues } from './wire-commands.js';
import type { StateCommand, StateMachine, StateResult } from '../state/state-machine.js';
import type { ClientStamp } from '../state/sessions.js';
import { commandProblem } from '../state/validate.js';
import type { MemberRuntime } from '../node/runtime.js';
import { RequestError } from '../node/waiting-list.js';
import type { WatchHub, WatchScope, WatchSink } from '../watch/hub.js';
import type { NodeId } from '../raft/types.js';
import { limitField, type Limits } from '../limits.js';
import { decodeBase64, errorFrame, wireAnswer } from './wire.js';
import type { TurnBudget } from './turn-budget.js';
import type { SnapshotStreams } from './snapshot-streams.js';
import { AUTH_REQUEST_TYPES, createAuthHandlers, OPEN_REQUESTS, type AuthRequestType } from './auth-handlers.js';
import type { AuthConnection, AuthGate } from '../auth/gate.js';
import type { PasswordHasher } from '../auth/passwords.js';
import type { AuditLog } from '../auth/audit.js';
import { AUTH_OPS } from '../state/auth.js';
import { createMemberHandlers } from './member-handlers.js';

/** One client connection, as the handlers see it: where its watches push, whether it is still open, who it is. */
export interface ClientConnection {
  readonly sink: WatchSink;
  alive(): boolean;
  readonly auth: AuthConnection;
}

export interface RequestHandlers {
  handle(type: RequestType, frame: Record<string, unknown>, connection: ClientConnection): Promise<Record<string, unknown>>;
  /** Whether a request of this type charged its answer to the turn's budget already (a read does, when served). */
  chargedWhenServed(type: RequestType): boolean;
  /** The connection closed: its watches end. */
  disconnected(connection: ClientConnection): void;
  /** Whether a request of this type is a write (its outcome may be unknown when its answer is lost). */
  isWrite(type: RequestType): boolean;
}

export interface HandlerDeps {
  readonly runtime: MemberRuntime;
  readonly hub: WatchHub;
  readonly limits: Limits;
  /** Answer bytes per turn of the event loop: a read waits for room before it is served. */
  readonly answerBudget: TurnBudget;
  /** The client URL of a member, for NOT_LEADER hints. */
  readonly leaderUrl: (leader: NodeId) => string | null;
  readonly status: () => Record<string, unknown>;
  /** Client snapshots streaming from this member (`snapshot` requests). */
  readonly snapshots: Pick<SnapshotStreams, 'pull' | 'closed'>;
  /** Who each connection speaks as, password hashing, and the audit log. */
  readonly auth: { readonly gate: AuthGate; readonly hasher: PasswordHasher; readonly audit: AuditLog };
}

/** How long a read may wait for this member to reach the revision its client carries. */
const MIN_REVISION_WAIT_MS = 5_000;
/** A page of leaseList, at most (and by default). */
const LEASE_PAGE_MAX = 10_000;
/** Leases a page of a user's own leases looks at, at most. */
const LEASE_SCAN_MAX = 100_000;
/** What a range page's walk (up to RANGE_SCAN_MAX paths) counts against the turn's answer budget, beyond its answer. */
const RANGE_WALK_COST_BYTES = 128 * 1024;

const WRITES: ReadonlySet<string> = new Set(['register', 'keepalive', 'create', 'put', 'delete', 'txn', 'compact', 'leaseGrant', 'leaseRevoke', 'memberAdd', 'memberPromote', 'memberRemove', ...AUTH_OPS]);
/** Reads served through `read`: their answers are charged to the turn's budget as they are served. */
const SERVED_READS: ReadonlySet<RequestType> = new Set(['get', 'children', 'range', 'leaseList']);

type Answer = Record<string, unknown>;

/** A request refused before anything ran: what the client gets back. */
class Refused extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function createHandlers(deps: HandlerDeps): RequestHandlers {
  const { runtime, hub, limits } = deps;
  const refusedAnswer = (error: unknown, isWrite: boolean): Answer => {
    if (error instanceof Refused) return errorFrame(error.code, error.message, error.extra);
    if (error instanceof RequestError) {
      const hint = error.leaderHint;
      return errorFrame(error.code, error.message, hint === null ? {} : { leader: { name: hint, url: deps.leaderUrl(hint) } });
    }
    // Not a failure the member knows: a write may have been proposed before it happened.
    return errorFrame(isWrite ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE', (error as Error).message);
  };
  /** A state-machine answer as JSON; an error names the replicated limit it passed, with this member's flag. */
  const toWire = (result: StateResult | Answer): Answer => {
    const r = result as { ok?: boolean; code?: ErrorCode; message?: string; revision?: number; limit?: keyof Limits };
    if (r.ok === false) return { revision: r.revision, ...errorFrame(r.code!, r.message!, r.limit === undefined ? {} : { limit: limitField(limits, r.limit) }) };
    return wireAnswer(result) as Answer;
  };
  const write = async (command: StateCommand, client: unknown, user: string | undefined, shape: (result: StateResult) => StateResult | Answer = (r) => r): Promise<Answer> => {
    try {
      return toWire(shape(await runtime.propose(command, client as ClientStamp | undefined, user)));
    } catch (error) {
      return refusedAnswer(error, true);
    }
  };
  /** A namespace write: checked whole against this member's limits first, then proposed with the limits the log must carry. */
  // The limits the log must carry: only those that differ from the defaults an entry without them means.
  const carried = (() => {
    const differing = {
      ...(limits.writeNodesMax === WRITE_NODES_MAX_DEFAULT ? {} : { writeNodesMax: limits.writeNodesMax }),
      ...(limits.writePathBytesMax === WRITE_PATH_BYTES_MAX_DEFAULT ? {} : { writePathBytesMax: limits.writePathBytesMax }),
      ...(limits.answerBytesMax === ANSWER_BYTES_MAX_DEFAULT ? {} : { answerBytesMax: limits.answerBytesMax }),
    };
    return Object.keys(differing).length === 0 ? null : differing;
  })();
  const namespaceWrite = (command: StateCommand, client: unknown, user: string | undefined, shape?: (result: StateResult) => StateResult | Answer): Promise<Answer> => {
    const problem = commandProblem(command, { valueBytesMax: limits.valueBytesMax, operandBytesMax: limits.valueBytesMax, pathBytesMax: limits.pathBytesMax, txnOpsMax: limits.txnOpsMax });
    if (problem !== null) {
      return Promise.resolve(errorFrame(problem.code, problem.message, problem.limit === undefined ? {} : { limit: limitField(limits, problem.limit) }));
    }
    return write(carried === null ? command : ({ ...command, limits: carried } as StateCommand), client, user, shape);
  };
  /**
   * `work`: what serving cost beyond the answer's own bytes (which the reply charges), in the
   * same unit: a range page walks up to 20,000 paths, a children list looks at every name it
   * weighs — even when it ends refused with a small answer.
   */
  const read = async (frame: Record<string, unknown>, connection: ClientConnection, serve: (machine: StateMachine) => unknown, work: (answer: unknown) => number = () => 0): Promise<Answer> => {
    try {
      // Served only in a turn with answer room left, and only for a connection still open: a
      // burst of reads released together is spread over turns, and one whose client went away
      // costs nothing more.
      // (Served later than confirmed is still linearizable: the state only moves on.)
      // Served and charged in one synchronous step: reads released together each see the
      // budget the ones before them spent (charged after an await, they all found it open).
      const served = (): Promise<unknown> =>
        deps.answerBudget.serve(connection, () => {
          if (!connection.alive()) return { ok: false, code: 'UNAVAILABLE', message: 'the connection closed', revision: runtime.machine.revision };
          const answer = runtime.readNow(serve); // refuses if the member stopped meanwhile
          deps.answerBudget.charge(work(answer) + answerBytes(answer));
          return answer;
        });
      if (frame['consistency'] === 'serializable') {
        if (typeof frame['minRevision'] === 'number') await runtime.whenRevision(frame['minRevision'], MIN_REVISION_WAIT_MS);
        return toWire((await served()) as Answer);
      }
      await runtime.readLinearizable(() => null);
      return toWire((await served()) as Answer);
    } catch (error) {
      return refusedAnswer(error, false);
    }
  };
  /** Every value of a write, from canonical base64 only. */
  const value = (text: unknown, what: string): Uint8Array => {
    if (text === undefined) return new Uint8Array(0);
    const bytes = decodeBase64(text as string);
    if (bytes === null) throw new Refused('INVALID_ARGUMENT', `${what} is not canonical base64 (padded to a multiple of 4, no stray bits)`);
    return bytes;
  };
  /** A refusal for an answer past the bound, in the state machine's shape (toWire turns it into a frame). */
  const answerTooLarge = (what: string, revision: number): Answer => ({ ok: false, code: 'TOO_LARGE', message: `${what} would pass the answer bound`, revision, limit: 'answerBytesMax' });

  /** A read refused for want of permission, in the state machine's shape; null if `user` may read `path` at `machine`'s state. */
  const readDenied = (machine: StateMachine, user: string | undefined, path: string): Answer | null => {
    const auth = machine.auth;
    if (!auth.enabled) return null;
    if (user === undefined) return { ok: false, code: 'UNAUTHENTICATED', message: 'auth is enabled: authenticate first', revision: machine.revision };
    if (auth.may(user, path, 'read')) return null;
    return { ok: false, code: 'PERMISSION_DENIED', message: `the user ${user} has no read permission on ${path}`, revision: machine.revision };
  };
  // With auth on, a request without a user (taken just before auth was turned on) is no admin.
  const isAdmin = (user: string | undefined): boolean => !runtime.machine.auth.enabled || (user !== undefined && runtime.machine.auth.isAdmin(user));
  const authRequests = createAuthHandlers({
    ...deps.auth,
    limits,
    machine: () => runtime.machine,
    write: (command, user) => write(command, undefined, user),
    readLinearizable: async (serve) => {
      try {
        return toWire(await runtime.readLinearizable(serve));
      } catch (error) {
        return refusedAnswer(error, false);
      }
    },
  });

  type Handler = (f: Record<string, unknown>, connection: ClientConnection, user: string | undefined) => Promise<Answer> | Answer;
  const authHandlers = Object.fromEntries(AUTH_REQUEST_TYPES.map((type): [AuthRequestType, Handler] => [type, (f, connection, user) => authRequests[type](f, connection.auth, user)])) as Record<AuthRequestType, Handler>;

  const memberRequests = createMemberHandlers({ runtime, audit: deps.auth.audit, isAdmin, leaderUrl: deps.leaderUrl });
  const memberHandlers: Record<'memberList' | 'memberAdd' | 'memberPromote' | 'memberRemove', Handler> = {
    memberList: (f, connection, user) => memberRequests.memberList(f, connection.auth, user),
    memberAdd: (f, connection, user) => memberRequests.memberAdd(f, connection.auth, user),
    memberPromote: (f, connection, user) => memberRequests.memberPromote(f, connection.auth, user),
    memberRemove: (f, connection, user) => memberRequests.memberRemove(f, connection.auth, user),
  };

  const handlers: Record<RequestType, Handler> = {
    // Replicated state every member holds the same: served from this member's, no quorum round.
    alarmList: () => ({ ok: true, revision: runtime.machine.revision, alarms: runtime.machine.alarms.list() }),
    register: (f, _c, user) => write({ op: 'registerClient', secret: randomBytes(16).toString('hex'), ...(typeof f['nonce'] === 'string' ? { nonce: f['nonce'] } : {}), sessionsMax: limits.sessionsMax }, undefined, user),
    keepalive: (f, _c, user) => write({ op: 'sessionKeepAlive', clientId: f['clientId'] as number, secret: f['secret'] as string }, undefined, user),
    create: (f, _c, user) => namespaceWrite({ op: 'create', path: f['path'] as string, value: value(f['value'], 'value'), ...pick(f, ['sequential', 'lease', 'parents']) }, f['client'], user, withoutValues(false)),
    put: (f, _c, user) => namespaceWrite({ op: 'put', path: f['path'] as string, value: value(f['value'], 'value'), ...pick(f, ['ifVersion', 'lease']) }, f['client'], user, withoutValues(f['prevNode'] === true)),
    delete: (f, _c, user) => namespaceWrite({ op: 'delete', path: f['path'] as string, ...pick(f, ['ifVersion', 'recursive']) }, f['client'], user),
    txn: (f, _c, user) => namespaceWrite(txnFromWire(f, value), f['client'], user, txnWithoutValues),
    compact: async (f, connection, user) => {
      const answer = await write({ op: 'compact', revision: f['revision'] as number }, undefined, user);
      const error = answer['error'] as { code?: string } | undefined;
      deps.auth.audit.record({ action: 'compact', user: user ?? null, source: connection.auth.source, outcome: answer['ok'] === true ? 'ok' : 'refused', target: { revision: f['revision'] }, ...(error?.code === undefined ? {} : { code: error.code }) });
      return answer;
    },
    get: (f, connection, user) =>
      read(f, connection, (machine) => {
        const denied = readDenied(machine, user, f['path'] as string);
        if (denied !== null) return denied;
        const got = machine.namespace.get(f['path'] as string, f['revision'] as number | undefined);
        if (got.ok && got.op === 'get' && nodeWireBytes(got.node) > limits.answerBytesMax) return answerTooLarge(`the node ${got.node.path}`, got.revision);
        return got;
      }),
    children: (f, connection, user) =>
      read(
        f,
        connection,
        (machine) => readDenied(machine, user, f['path'] as string) ?? machine.namespace.childrenOf(f['path'] as string, { ...(pick(f, ['limit', 'after']) as { limit?: number; after?: string }), bytesMax: limits.answerBytesMax }),
        // A refused list weighed up to a whole answer's worth of names.
        (answer) => ((answer as { ok?: boolean }).ok === false ? limits.answerBytesMax : 0),
      ),
    range: (f, connection, user) =>
      read(
        f,
        connection,
        (machine) => readDenied(machine, user, f['path'] as string) ?? machine.namespace.range(f['path'] as string, { limit: f['limit'] as number, ...pick(f, ['after', 'revision']), bytesMax: limits.answerBytesMax } as { limit: number }),
        () => RANGE_WALK_COST_BYTES,
      ),
    status: () => ({ ok: true, revision: runtime.machine.revision, status: deps.status() }),
    // The whole store, users' password hashes included: admin only.
    snapshot: (f, connection, user) => (isAdmin(user) ? deps.snapshots.pull(f, connection) : errorFrame('PERMISSION_DENIED', `the user ${String(user)} has no admin permission on / (needed for a snapshot)`)),
    leaseGrant: (f, _c, user) => {
      const ttlMs = f['ttlMs'] as number;
      if (ttlMs < runtime.leaseTtlMinMs) {
        return errorFrame('INVALID_ARGUMENT', `ttlMs must be at least ${runtime.leaseTtlMinMs} (twice this cluster's longest election timeout), got ${ttlMs}`);
      }
      return write({ op: 'leaseGrant', ttlMs, ...(typeof f['lease'] === 'number' ? { lease: f['lease'] } : {}), leasesMax: limits.leasesMax }, undefined, user);
    },
    leaseRevoke: (f, _c, user) => write({ op: 'leaseRevoke', lease: f['lease'] as number }, undefined, user),
    leaseKeepAlive: async (f, _c, user) => {
      try {
        return { ok: true, leases: await runtime.leaseRequest({ op: 'keepAlive', leases: f['leases'] as number[], ...(user === undefined ? {} : { user }) }) };
      } catch (error) {
        return refusedAnswer(error, false);
      }
    },
    leaseTimeToLive: async (f, _c, user) => {
      try {
        const [answer] = await runtime.leaseRequest({ op: 'timeToLive', lease: f['lease'] as number, ...(user === undefined ? {} : { user }) });
        if (answer === undefined || !answer.ok) return errorFrame(answer?.ok === false ? answer.code : 'LEASE_NOT_FOUND', answer?.ok === false ? answer.message : 'no such lease');
        const { ok: _ok, ...lease } = answer;
        if (f['paths'] !== true) return { ok: true, lease };
        // Only the paths its user may read (a lease made while auth was off belongs to no one).
        const paths = await runtime.readLinearizable((machine) => machine.namespace.pathsOfLease(lease.id).filter((p) => user === undefined || !machine.auth.enabled || machine.auth.may(user, p, 'read')));
        let bytes = 0;
        for (const path of paths) bytes += jsonStringBytes(path) + 1;
        if (bytes > limits.answerBytesMax) return toWire(answerTooLarge(`the ${paths.length} paths of lease ${lease.id}`, runtime.machine.revision));
        return { ok: true, lease, paths };
      } catch (error) {
        return refusedAnswer(error, false);
      }
    },
    leaseList: (f, connection, user) =>
      read(f, connection, (machine) => {
        const limit = (f['limit'] as number | undefined) ?? LEASE_PAGE_MAX;
        // A user who is not an admin sees its own leases only (others' ids would let it spy on or disturb them).
        if (machine.auth.enabled && user === undefined) return { ok: false, code: 'UNAUTHENTICATED', message: 'auth is enabled: authenticate first', revision: machine.revision };
        const mine = user === undefined || !machine.auth.enabled || machine.auth.isAdmin(user) ? null : user;
        const after = (f['after'] as number | undefined) ?? 0;
        if (mine === null) {
          const ids = machine.leases.idsAfter(after, limit + 1);
          const page = ids.slice(0, limit).map((id) => ({ id, ttlMs: machine.leases.get(id)!.ttlMs }));
          return { ok: true, revision: machine.revision, op: 'leaseList', leases: page, next: ids.length > limit ? page[page.length - 1]!.id : null };
        }
        // A page looks at LEASE_SCAN_MAX leases at most: past them (the user's are few among many)
        // it ends early, and `next` goes on from the last one looked at.
        const scanned = machine.leases.idsAfter(after, LEASE_SCAN_MAX);
        const own = scanned.filter((id) => machine.leases.get(id)!.owner === mine);
        const page = own.slice(0, limit).map((id) => ({ id, ttlMs: machine.leases.get(id)!.ttlMs }));
        const next = own.length > limit ? page[page.length - 1]!.id : scanned.length === LEASE_SCAN_MAX ? scanned[scanned.length - 1]! : null;
        return { ok: true, revision: machine.revision, op: 'leaseList', leases: page, next };
      }),
    watch: (f, connection, user) => {
      const path = f['path'] as string;
      const checked = checkPath(path);
      if (!checked.ok) return errorFrame('INVALID_ARGUMENT', checked.error.message);
      const scope = (f['scope'] as WatchScope | undefined) ?? 'node';
      // A node watch on a path it may not read would only ever be silent: refused instead.
      // Children and subtree watches see the events on the paths they may read.
      if (user !== undefined && scope === 'node' && !runtime.machine.auth.may(user, path, 'read')) return errorFrame('PERMISSION_DENIED', `the user ${user} has no read permission on ${path}`);
      // Asked per event and per revision, against who the connection is now: a watch opened
      // before auth was turned on, or whose token expired or password changed, is cancelled
      // (UNAUTHENTICATED) rather than go on streaming; a grant revoked hides its paths at once.
      const gate = deps.auth.gate;
      const allowed = (): string | null => {
        const who = gate.whoIs(connection.auth);
        return who.ok ? null : who.message;
      };
      const mayRead = (changed: string): boolean => {
        const who = gate.whoIs(connection.auth);
        return who.ok && (who.user === undefined || runtime.machine.auth.may(who.user, changed, 'read'));
      };
      const watchId = f['watchId'] as number;
      const started = hub.watch(connection.sink, watchId, {
        path,
        scope,
        mayRead,
        allowed,
        ...(typeof f['fromRevision'] === 'number' ? { fromRevision: f['fromRevision'] } : {}),
        prevNode: f['prevNode'] === true,
        noPut: f['noPut'] === true,
        noDelete: f['noDelete'] === true,
        progressNotify: f['progressNotify'] === true,
      });
      if (!started.ok) {
        return errorFrame(started.code, started.message, {
          ...(started.compactRevision === undefined ? {} : { compactRevision: started.compactRevision }),
          ...(started.limit === undefined ? {} : { limit: limitField(limits, started.limit) }),
        });
      }
      return { ok: true, watchId, revision: started.revision };
    },
    cancelWatch: (f, connection) =>
      hub.cancel(connection.sink, f['watchId'] as number) ? { ok: true, watchId: f['watchId'] } : errorFrame('WATCH_NOT_FOUND', `no watch ${String(f['watchId'])} is open on this connection`),
    watchProgress: (_f, connection) => ({ ok: true, revision: hub.progress(connection.sink) }),
    ...authHandlers,
    ...memberHandlers,
  };

  return {
    disconnected(connection) {
      hub.closed(connection.sink);
      deps.snapshots.closed(connection);
    },
    isWrite: (type) => WRITES.has(type),
    chargedWhenServed: (type) => SERVED_READS.has(type),
    async handle(type, frame, connection) {
      try {
        let user: string | undefined;
        if (!OPEN_REQUESTS.has(type)) {
          const who = deps.auth.gate.whoIs(connection.auth);
          if (!who.ok) return errorFrame(who.code, who.message);
          user = who.user;
        }
        const answer = await handlers[type](frame, connection, user);
        const error = answer['error'] as { code?: string; message?: string } | undefined;
        // Refusals of an authenticated user are audited (an unauthenticated flood is not: it costs nothing to send).
        if (error?.code === 'PERMISSION_DENIED' && !AUTH_OPS.has(type)) deps.auth.audit.record({ action: 'denied', user: user ?? null, source: connection.auth.source, outcome: 'refused', code: error.code, target: { type, ...(typeof frame['path'] === 'string' ? { path: frame['path'] } : {}) }, reason: error.message ?? '' });
        return answer;
      } catch (error) {
        return refusedAnswer(error, WRITES.has(type));
      }
    },
  };
}
