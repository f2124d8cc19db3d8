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
import type { StateCommand, StateMachine, StateResult } from '../state/state-machine.js';
import type { Compare, CompareOperator, CompareTarget, NodeView, TxnCommand, TxnOp } from '../state/types.js';
import type { ClientStamp } from '../state/sessions.js';
import { commandProblem } from '../state/validate.js';
import type { MemberRuntime } from '../node/runtime.js';
import { RequestError } from '../node/waiting-list.js';
import type { WatchHub, WatchScope, WatchSink } from '../watch/hub.js';
import type { NodeId } from '../raft/types.js';
import { limitField, type Limits } from '../limits.js';
import { decodeBase64, errorFrame, wireValue } from './wire.js';
import type { TurnBudget } from './turn-budget.js';
import type { SnapshotStreams } from './snapshot-streams.js';

/** One client connection, as the handlers see it: where its watches push, and whether it is still open. */
export interface ClientConnection {
  readonly sink: WatchSink;
  alive(): boolean;
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
}

/** How long a read may wait for this member to reach the revision its client carries. */
const MIN_REVISION_WAIT_MS = 5_000;
/** A page of leaseList, at most (and by default). */
const LEASE_PAGE_MAX = 10_000;
/** What a range page's walk (up to RANGE_SCAN_MAX paths) counts against the turn's answer budget, beyond its answer. */
const RANGE_WALK_COST_BYTES = 128 * 1024;

const WRITES: ReadonlySet<RequestType> = new Set(['register', 'keepalive', 'create', 'put', 'delete', 'txn', 'compact', 'leaseGrant', 'leaseRevoke']);
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
    return wireValue(result) as Answer;
  };
  const write = async (command: StateCommand, client: unknown, shape: (result: StateResult) => StateResult | Answer = (r) => r): Promise<Answer> => {
    try {
      return toWire(shape(await runtime.propose(command, client as ClientStamp | undefined)));
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
  const namespaceWrite = (command: StateCommand, client: unknown, shape?: (result: StateResult) => StateResult | Answer): Promise<Answer> => {
    const problem = commandProblem(command, { valueBytesMax: limits.valueBytesMax, operandBytesMax: limits.valueBytesMax, pathBytesMax: limits.pathBytesMax, txnOpsMax: limits.txnOpsMax });
    if (problem !== null) {
      return Promise.resolve(errorFrame(problem.code, problem.message, problem.limit === undefined ? {} : { limit: limitField(limits, problem.limit) }));
    }
    return write(carried === null ? command : ({ ...command, limits: carried } as StateCommand), client, shape);
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
      const served = async (): Promise<unknown> => {
        for (let wait = deps.answerBudget.room(); wait !== null; wait = deps.answerBudget.room()) await wait;
        if (!connection.alive()) return { ok: false, code: 'UNAVAILABLE', message: 'the connection closed', revision: runtime.machine.revision };
        const answer = runtime.readNow(serve); // refuses if the member stopped meanwhile
        deps.answerBudget.charge(work(answer) + answerBytes(answer));
        return answer;
      };
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

  const handlers: Record<RequestType, (f: Record<string, unknown>, connection: ClientConnection) => Promise<Answer> | Answer> = {
    register: (f) => write({ op: 'registerClient', secret: randomBytes(16).toString('hex'), ...(typeof f['nonce'] === 'string' ? { nonce: f['nonce'] } : {}), sessionsMax: limits.sessionsMax }, undefined),
    keepalive: (f) => write({ op: 'sessionKeepAlive', clientId: f['clientId'] as number, secret: f['secret'] as string }, undefined),
    create: (f) => namespaceWrite({ op: 'create', path: f['path'] as string, value: value(f['value'], 'value'), ...pick(f, ['sequential', 'lease', 'parents']) }, f['client'], withoutValues(false)),
    put: (f) => namespaceWrite({ op: 'put', path: f['path'] as string, value: value(f['value'], 'value'), ...pick(f, ['ifVersion', 'lease']) }, f['client'], withoutValues(f['prevNode'] === true)),
    delete: (f) => namespaceWrite({ op: 'delete', path: f['path'] as string, ...pick(f, ['ifVersion', 'recursive']) }, f['client']),
    txn: (f) => namespaceWrite(txnFromWire(f, value), f['client'], txnWithoutValues),
    compact: (f) => write({ op: 'compact', revision: f['revision'] as number }, undefined),
    get: (f, connection) =>
      read(f, connection, (machine) => {
        const got = machine.namespace.get(f['path'] as string, f['revision'] as number | undefined);
        if (got.ok && got.op === 'get' && nodeWireBytes(got.node) > limits.answerBytesMax) return answerTooLarge(`the node ${got.node.path}`, got.revision);
        return got;
      }),
    children: (f, connection) =>
      read(
        f,
        connection,
        (machine) => machine.namespace.childrenOf(f['path'] as string, { ...(pick(f, ['limit', 'after']) as { limit?: number; after?: string }), bytesMax: limits.answerBytesMax }),
        // A refused list weighed up to a whole answer's worth of names.
        (answer) => ((answer as { ok?: boolean }).ok === false ? limits.answerBytesMax : 0),
      ),
    range: (f, connection) =>
      read(
        f,
        connection,
        (machine) => machine.namespace.range(f['path'] as string, { limit: f['limit'] as number, ...pick(f, ['after', 'revision']), bytesMax: limits.answerBytesMax } as { limit: number }),
        () => RANGE_WALK_COST_BYTES,
      ),
    status: () => ({ ok: true, revision: runtime.machine.revision, status: deps.status() }),
    snapshot: (f, connection) => deps.snapshots.pull(f, connection),
    leaseGrant: (f) => {
      const ttlMs = f['ttlMs'] as number;
      if (ttlMs < runtime.leaseTtlMinMs) {
        return errorFrame('INVALID_ARGUMENT', `ttlMs must be at least ${runtime.leaseTtlMinMs} (twice this cluster's longest election timeout), got ${ttlMs}`);
      }
      return write({ op: 'leaseGrant', ttlMs, ...(typeof f['lease'] === 'number' ? { lease: f['lease'] } : {}), leasesMax: limits.leasesMax }, undefined);
    },
    leaseRevoke: (f) => write({ op: 'leaseRevoke', lease: f['lease'] as number }, undefined),
    leaseKeepAlive: async (f) => {
      try {
        return { ok: true, leases: await runtime.leaseRequest({ op: 'keepAlive', leases: f['leases'] as number[] }) };
      } catch (error) {
        return refusedAnswer(error, false);
      }
    },
    leaseTimeToLive: async (f) => {
      try {
        const [answer] = await runtime.leaseRequest({ op: 'timeToLive', lease: f['lease'] as number });
        if (answer === undefined || !answer.ok) return errorFrame(answer?.ok === false ? answer.code : 'LEASE_NOT_FOUND', answer?.ok === false ? answer.message : 'no such lease');
        const { ok: _ok, ...lease } = answer;
        if (f['paths'] !== true) return { ok: true, lease };
        const paths = await runtime.readLinearizable((machine) => machine.namespace.pathsOfLease(lease.id));
        let bytes = 0;
        for (const path of paths) bytes += jsonStringBytes(path) + 1;
        if (bytes > limits.answerBytesMax) return toWire(answerTooLarge(`the ${paths.length} paths of lease ${lease.id}`, runtime.machine.revision));
        return { ok: true, lease, paths };
      } catch (error) {
        return refusedAnswer(error, false);
      }
    },
    leaseList: (f, connection) =>
      read(f, connection, (machine) => {
        const limit = (f['limit'] as number | undefined) ?? LEASE_PAGE_MAX;
        const ids = machine.leases.idsAfter((f['after'] as number | undefined) ?? 0, limit + 1);
        const page = ids.slice(0, limit).map((id) => ({ id, ttlMs: machine.leases.get(id)!.ttlMs }));
        return { ok: true, revision: machine.revision, op: 'leaseList', leases: page, next: ids.length > limit ? page[page.length - 1]!.id : null };
      }),
    watch: (f, connection) => {
      const path = f['path'] as string;
      const checked = checkPath(path);
      if (!checked.ok) return errorFrame('INVALID_ARGUMENT', checked.error.message);
      const watchId = f['watchId'] as number;
      const started = hub.watch(connection.sink, watchId, {
        path,
        scope: (f['scope'] as WatchScope | undefined) ?? 'node',
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
        return await handlers[type](frame, connection);
      } catch (error) {
        return refusedAnswer(error, WRITES.has(type));
      }
    },
  };
}

/**
 * A write's answer without the value the client just sent (the node's path and stat only), and
 * without the previous node unless asked for: an answer a fraction of the request's size.
 */
function withoutValues(keepPrevNode: boolean): (result: StateResult) => StateResult | Answer {
  return (result) => {
    if (!result.ok || !('node' in result) || result.node === null || typeof result.node !== 'object') return result;
    const { node, ...rest } = result;
    const { prevNode, ...others } = rest as typeof rest & { prevNode?: unknown };
    return { ...others, node: { path: node.path, stat: node.stat }, ...(keepPrevNode && prevNode !== undefined ? { prevNode } : {}) };
  };
}

/**
 * A transaction's answer: its gets with their nodes whole (what a get is for; bounded by the
 * state machine), its writes without values — the paths and stats, and a put's previous stat —
 * so writing big values never makes a big answer.
 */
function txnWithoutValues(result: StateResult): StateResult | Answer {
  if (!result.ok || !('op' in result) || result.op !== 'txn') return result;
  const strip = (node: NodeView | null): Pick<NodeView, 'path' | 'stat'> | null => (node === null ? null : { path: node.path, stat: node.stat });
  const results = result.results.map((op) => {
    if (op.op === 'create') return { ...op, node: strip(op.node) };
    if (op.op === 'put') return { ...op, node: strip(op.node), prevNode: strip(op.prevNode) };
    return op;
  });
  return { ...result, results };
}

/** An answer's size in JSON, estimated without building it: its nodes (with values), names, leases. */
function answerBytes(answer: unknown): number {
  if (answer === null || typeof answer !== 'object') return 0;
  const a = answer as { node?: unknown; nodes?: unknown; names?: unknown; leases?: unknown };
  let bytes = 64;
  if (isNodeView(a.node)) bytes += nodeWireBytes(a.node);
  if (Array.isArray(a.nodes)) for (const node of a.nodes) if (isNodeView(node)) bytes += nodeWireBytes(node) + 1;
  if (Array.isArray(a.names)) for (const name of a.names) if (typeof name === 'string') bytes += jsonStringBytes(name) + 1;
  if (Array.isArray(a.leases)) bytes += 48 * a.leases.length;
  return bytes;
}

function isNodeView(value: unknown): value is { path: string; value: Uint8Array } {
  return typeof value === 'object' && value !== null && typeof (value as { path?: unknown }).path === 'string' && (value as { value?: unknown }).value instanceof Uint8Array;
}

function pick(frame: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (frame[key] !== undefined) out[key] = frame[key];
  return out;
}

/** A txn frame as the state machine takes it: its shape is the protocol schema's (checked on arrival); only values change form, base64 to bytes. */
function txnFromWire(f: Record<string, unknown>, value: (text: unknown, what: string) => Uint8Array): TxnCommand {
  const branch = (name: 'success' | 'failure'): TxnOp[] => ((f[name] as Record<string, unknown>[] | undefined) ?? []).map((op, i) => opFromWire(op, () => value(op['value'], `${name} op ${i} value`)));
  const compare = ((f['compare'] as Record<string, unknown>[] | undefined) ?? []).map(
    (c, i): Compare => ({
      path: c['path'] as string,
      target: c['target'] as CompareTarget,
      operator: c['operator'] as CompareOperator,
      operand: c['target'] === 'value' && typeof c['operand'] === 'string' ? value(c['operand'], `compare ${i} operand`) : (c['operand'] as number | boolean),
    }),
  );
  return { op: 'txn', compare, success: branch('success'), failure: branch('failure') };
}

function opFromWire(op: Record<string, unknown>, bytes: () => Uint8Array): TxnOp {
  const path = op['path'] as string;
  switch (op['op']) {
    case 'create':
      return { op: 'create', path, value: bytes(), ...pick(op, ['sequential', 'lease', 'parents']) };
    case 'put':
      return { op: 'put', path, value: bytes(), ...pick(op, ['ifVersion', 'lease']) };
    case 'delete':
      return { op: 'delete', path, ...pick(op, ['ifVersion', 'recursive']) };
    default:
      return { op: 'get', path, ...pick(op, ['revision']) };
  }
}
