/**
 * Every limit a member puts on what one client may ask of it, in one place (TigerBeetle's rule:
 * put a limit on everything). Each has a name, a default, a `wardend` flag (and its `WARDEN_*`
 * environment variable), and says what a client gets past it — an error that names the limit
 * and its flag, or, where no answer can be sent, a close with a reason that does.
 *
 * Limits the replicated state machine must apply identically on every member (sessions, leases,
 * nodes one delete may remove, answer bytes of a transaction) travel inside the proposed
 * command: the proposer's setting decides, so members with different flags never diverge.
 *
 * Must never: hold a limit anywhere else in server/ (a module takes its bound from `Limits`);
 * describe a limit here that the code does not enforce (the adversarial suite tries each one).
 */

import type { ErrorCode } from '../shared/errors.js';
import { ANSWER_BYTES_MAX_DEFAULT, FRAME_BYTES_MAX_DEFAULT, WRITE_NODES_MAX_DEFAULT, WRITE_PATH_BYTES_MAX_DEFAULT } from '../shared/protocol.js';
import { PATH_BYTES_MAX } from '../shared/paths.js';
import { LEASES_MAX } from './state/leases.js';
import { AUTH_CEILINGS } from './state/auth.js';

export interface Limits {
  /** The largest client frame read; a larger one closes its connection (1009) with a reason. */
  readonly frameBytesMax: number;
  /** The largest node value. */
  readonly valueBytesMax: number;
  /** The longest path, in UTF-8 bytes (at most the protocol's 4,096). */
  readonly pathBytesMax: number;
  /** Compares, and ops in each branch, of one transaction. */
  readonly txnOpsMax: number;
  /** The largest answer one request may have (a range page stops short of it instead). */
  readonly answerBytesMax: number;
  /** Answers a connection has not read, past which it is closed (1008). */
  readonly unreadBytesPerConnectionMax: number;
  /** Unread answers of all connections together, past which the connection holding the most is closed. */
  readonly unreadBytesPerMemberMax: number;
  /** Client connections a member holds at once. */
  readonly connectionsMax: number;
  /** Requests one connection may have in flight. */
  readonly inFlightPerConnectionMax: number;
  /** Bytes of the requests in flight on all connections together; past it new requests wait unread. */
  readonly inFlightBytesPerMemberMax: number;
  /** Watches open on one connection. */
  readonly watchesPerConnectionMax: number;
  /** Watches open on a member. */
  readonly watchesMax: number;
  /** Watch events a connection has not read, past which its watches are cancelled (SLOW_CONSUMER). */
  readonly watchUnsentBytesMax: number;
  /** Client sessions in the cluster; a full table refuses new ones (never evicts a live one). */
  readonly sessionsMax: number;
  /** Leases in the cluster. */
  readonly leasesMax: number;
  /** Nodes one write creates or deletes in all, and the ephemeral nodes one lease holds. */
  readonly writeNodesMax: number;
  /** The UTF-8 bytes of those nodes' paths, in all (and of one lease's nodes). */
  readonly writePathBytesMax: number;
  /** Node changes one turn of the update loop applies before it yields to the network. */
  readonly turnChangesMax: number;
  /** Milliseconds one turn of the update loop spends taking inputs, and again applying, before it yields to the network. */
  readonly turnApplyMsMax: number;
  /** Answer bytes one turn of the event loop builds, member-wide, before the rest wait for the next. */
  readonly turnAnswerBytesMax: number;
  /** Client snapshots (`warden snapshot save`) streaming from a member at once: each holds a RocksDB snapshot open. */
  readonly snapshotStreamsMax: number;
  /** How long a client snapshot may wait for its next pull before the member ends it. */
  readonly snapshotIdleMs: number;
  /** Users in the cluster. */
  readonly usersMax: number;
  /** Roles in the cluster. */
  readonly rolesMax: number;
  /** Permissions (path prefixes) one role holds. */
  readonly rolePermissionsMax: number;
  /** Roles one user holds. */
  readonly userRolesMax: number;
  /** Password checks (scrypt, on the thread pool) waiting on a member; one runs at a time. */
  readonly authQueueMax: number;
  /** Users and source addresses whose failed authentications a member remembers (to slow the next). */
  readonly authFailuresTrackedMax: number;
}

export interface LimitSpec {
  readonly key: keyof Limits;
  readonly flag: string;
  readonly defaultValue: number;
  readonly unit: 'bytes' | 'count' | 'ms';
  /** What the limit bounds, for --help and the README. */
  readonly what: string;
  /** What a client meets past it. */
  readonly past: string;
  /** The error code a request past it is answered with, if it is answered. */
  readonly code: ErrorCode | null;
  /** The hard ceiling (what the protocol or the state machine can hold), if any. */
  readonly ceiling?: number;
}

const MiB = 1024 * 1024;
/** The most sessions a state machine keeps whatever its proposer says (server.ts builds it with this). */
export const SESSIONS_CEILING = 1_000_000;

export const LIMIT_SPECS: readonly LimitSpec[] = [
  { key: 'frameBytesMax', flag: 'max-frame-bytes', defaultValue: FRAME_BYTES_MAX_DEFAULT, unit: 'bytes', what: 'the largest client frame read', past: 'the connection is closed (1009) with a reason naming the limit', code: null },
  { key: 'valueBytesMax', flag: 'max-value-bytes', defaultValue: 1 * MiB, unit: 'bytes', what: 'the largest node value (also a value compare operand)', past: 'TOO_LARGE, before anything is proposed', code: 'TOO_LARGE', ceiling: 16 * MiB },
  { key: 'pathBytesMax', flag: 'max-path-bytes', defaultValue: PATH_BYTES_MAX, unit: 'bytes', what: 'the longest path, in UTF-8 bytes', past: 'TOO_LARGE, before anything is proposed', code: 'TOO_LARGE', ceiling: PATH_BYTES_MAX },
  { key: 'txnOpsMax', flag: 'max-txn-ops', defaultValue: 128, unit: 'count', what: 'compares, and ops in each branch, of one transaction', past: 'TOO_LARGE, before anything is proposed', code: 'TOO_LARGE', ceiling: 1024 },
  { key: 'answerBytesMax', flag: 'max-answer-bytes', defaultValue: ANSWER_BYTES_MAX_DEFAULT, unit: 'bytes', what: 'the largest answer to one request (a transaction\'s gets included)', past: 'TOO_LARGE and nothing applied; a range page ends early instead, with its continuation', code: 'TOO_LARGE' },
  { key: 'unreadBytesPerConnectionMax', flag: 'max-unread-bytes', defaultValue: 16 * MiB, unit: 'bytes', what: 'answers one connection has not read', past: 'that connection is dropped (the limit is named in the member\'s log, client_cut)', code: null },
  { key: 'unreadBytesPerMemberMax', flag: 'max-member-unread-bytes', defaultValue: 64 * MiB, unit: 'bytes', what: 'unread answers and events of all connections together', past: 'the connection holding the most unread bytes is dropped (logged, client_cut)', code: null },
  { key: 'connectionsMax', flag: 'max-connections', defaultValue: 4_096, unit: 'count', what: 'client connections open on a member', past: 'a new connection gets one RESOURCE_EXHAUSTED frame and is closed (1013)', code: 'RESOURCE_EXHAUSTED' },
  { key: 'inFlightPerConnectionMax', flag: 'max-in-flight', defaultValue: 4_096, unit: 'count', what: 'requests one connection has in flight', past: 'RESOURCE_EXHAUSTED for each request past it (not applied; the connection stays)', code: 'RESOURCE_EXHAUSTED' },
  { key: 'inFlightBytesPerMemberMax', flag: 'max-member-in-flight-bytes', defaultValue: 256 * MiB, unit: 'bytes', what: 'bytes of the requests in flight on all connections together', past: 'RESOURCE_EXHAUSTED for each request past it (not applied)', code: 'RESOURCE_EXHAUSTED' },
  { key: 'watchesPerConnectionMax', flag: 'max-watches-per-connection', defaultValue: 10_000, unit: 'count', what: 'watches open on one connection', past: 'RESOURCE_EXHAUSTED for the watch', code: 'RESOURCE_EXHAUSTED' },
  { key: 'watchesMax', flag: 'max-watches', defaultValue: 100_000, unit: 'count', what: 'watches open on a member', past: 'RESOURCE_EXHAUSTED for the watch', code: 'RESOURCE_EXHAUSTED' },
  { key: 'watchUnsentBytesMax', flag: 'max-watch-unsent-bytes', defaultValue: 8 * MiB, unit: 'bytes', what: 'live watch events a connection has not read', past: 'its watches are cancelled with SLOW_CONSUMER and a resume revision (a replay waits for the reader instead)', code: 'SLOW_CONSUMER' },
  { key: 'sessionsMax', flag: 'max-sessions', defaultValue: 100_000, unit: 'count', what: 'client sessions in the cluster', past: 'RESOURCE_EXHAUSTED for register (a live session is never evicted)', code: 'RESOURCE_EXHAUSTED', ceiling: SESSIONS_CEILING },
  { key: 'leasesMax', flag: 'max-leases', defaultValue: 100_000, unit: 'count', what: 'leases in the cluster', past: 'RESOURCE_EXHAUSTED for leaseGrant', code: 'RESOURCE_EXHAUSTED', ceiling: LEASES_MAX },
  { key: 'writeNodesMax', flag: 'max-write-nodes', defaultValue: WRITE_NODES_MAX_DEFAULT, unit: 'count', what: 'nodes one write creates or deletes in all (parents a put makes, a recursive delete, a transaction\'s ops), and the ephemeral nodes one lease holds (they die in one write)', past: 'TOO_LARGE for the write, nothing applied (split it: delete a subtree in pages); RESOURCE_EXHAUSTED for an ephemeral create on a full lease', code: 'TOO_LARGE' },
  { key: 'writePathBytesMax', flag: 'max-write-path-bytes', defaultValue: WRITE_PATH_BYTES_MAX_DEFAULT, unit: 'bytes', what: 'the paths of the nodes one write creates or deletes, in UTF-8 bytes in all (a node costs its path\'s length), and of one lease\'s nodes', past: 'TOO_LARGE for the write, nothing applied (split it); RESOURCE_EXHAUSTED for an ephemeral create on a full lease', code: 'TOO_LARGE' },
  { key: 'turnChangesMax', flag: 'max-turn-changes', defaultValue: 10_000, unit: 'count', what: 'node changes one turn of the update loop applies before it lets the network in', past: 'the rest is applied on the next turn (no error)', code: null },
  { key: 'turnApplyMsMax', flag: 'max-turn-apply-ms', defaultValue: 10, unit: 'ms', what: 'milliseconds one turn of the update loop spends taking requests in, and again applying entries, before it lets the network in', past: 'the rest is taken or applied on the next turn (no error; at least one of each per turn)', code: null },
  { key: 'turnAnswerBytesMax', flag: 'max-turn-answer-bytes', defaultValue: 4 * MiB, unit: 'bytes', what: 'answer bytes one turn of the event loop builds, for every client together', past: 'the rest of the answers (and the reads not yet served) wait for the next turn (no error)', code: null },
  { key: 'snapshotStreamsMax', flag: 'max-snapshot-streams', defaultValue: 2, unit: 'count', what: 'client snapshots (`warden snapshot save`) streaming from a member at once (each holds a RocksDB snapshot, and the files it needs, until it ends)', past: 'RESOURCE_EXHAUSTED for the new snapshot (retry when one ends)', code: 'RESOURCE_EXHAUSTED' },
  { key: 'usersMax', flag: 'max-users', defaultValue: 10_000, unit: 'count', what: 'users in the cluster', past: 'RESOURCE_EXHAUSTED for user add', code: 'RESOURCE_EXHAUSTED', ceiling: AUTH_CEILINGS.usersMax },
  { key: 'rolesMax', flag: 'max-roles', defaultValue: 10_000, unit: 'count', what: 'roles in the cluster', past: 'RESOURCE_EXHAUSTED for role add', code: 'RESOURCE_EXHAUSTED', ceiling: AUTH_CEILINGS.rolesMax },
  { key: 'rolePermissionsMax', flag: 'max-role-permissions', defaultValue: 10_000, unit: 'count', what: 'permissions (path prefixes) one role holds', past: 'RESOURCE_EXHAUSTED for role grant', code: 'RESOURCE_EXHAUSTED', ceiling: AUTH_CEILINGS.rolePermissionsMax },
  { key: 'userRolesMax', flag: 'max-user-roles', defaultValue: 1_000, unit: 'count', what: 'roles one user holds', past: 'RESOURCE_EXHAUSTED for user grant-role', code: 'RESOURCE_EXHAUSTED', ceiling: AUTH_CEILINGS.userRolesMax },
  { key: 'authQueueMax', flag: 'max-auth-queue', defaultValue: 64, unit: 'count', what: 'password checks waiting on a member (scrypt runs one at a time, off the event loop, so a flood of logins never starves the disk\'s threads)', past: 'RESOURCE_EXHAUSTED for authenticate (retry later)', code: 'RESOURCE_EXHAUSTED' },
  { key: 'authFailuresTrackedMax', flag: 'max-auth-failures-tracked', defaultValue: 10_000, unit: 'count', what: 'users and source addresses whose failed authentications a member remembers, to delay their next attempt', past: 'the least recently failing is forgotten (no error)', code: null },
  { key: 'snapshotIdleMs', flag: 'max-snapshot-idle-ms', defaultValue: 30_000, unit: 'ms', what: 'how long a client snapshot may wait for the client to ask for its next chunk', past: 'the member ends it; the next pull is refused INVALID_ARGUMENT (save again)', code: null },
];

/** A full set of limits, one value per spec (every key of `Limits` has exactly one spec). */
export function limitsFrom(valueOf: (spec: LimitSpec) => number): Limits {
  const limits: Partial<Record<keyof Limits, number>> = {};
  for (const spec of LIMIT_SPECS) limits[spec.key] = valueOf(spec);
  return limits as Limits;
}

export const DEFAULT_LIMITS: Limits = limitsFrom((spec) => spec.defaultValue);

export function limitSpec(key: keyof Limits): LimitSpec {
  return LIMIT_SPECS.find((spec) => spec.key === key)!;
}

/**
 * The limits a member runs with: the defaults, overridden by `overrides`. Throws with the flag's
 * name for a value that is not a positive integer or passes the limit's ceiling.
 */
export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const limits = limitsFrom((spec) => {
    const value = overrides[spec.key] ?? spec.defaultValue;
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${spec.flag} must be a positive integer, got ${String(value)}`);
    if (spec.ceiling !== undefined && value > spec.ceiling) throw new Error(`--${spec.flag} can be at most ${spec.ceiling}, got ${value}`);
    return value;
  });
  // One node at the biggest value and path must fit a frame (to be written) and an answer (to be
  // read back): a value that can be stored but never read is refused here, not met later.
  const node = 4 * Math.ceil(limits.valueBytesMax / 3) + 2 * limits.pathBytesMax + 1024;
  if (limits.frameBytesMax < node) throw new Error(`--max-frame-bytes must hold one value of --max-value-bytes in base64 with its path: at least ${node}, got ${limits.frameBytesMax}`);
  if (limits.answerBytesMax < node) throw new Error(`--max-answer-bytes must hold one node of --max-value-bytes in base64 with its path: at least ${node}, got ${limits.answerBytesMax}`);
  return limits;
}

/** The `limit` field of an error frame: which limit was passed, its flag and its value. */
export function limitField(limits: Limits, key: keyof Limits): { readonly name: keyof Limits; readonly flag: string; readonly value: number } {
  return { name: key, flag: `--${limitSpec(key).flag}`, value: limits[key] };
}

/** "answer bytes per request (--max-answer-bytes 4194304)": how messages name a limit. */
export function nameLimit(limits: Limits, key: keyof Limits): string {
  return `--${limitSpec(key).flag} ${limits[key]}`;
}
