/**
 * The public client: what a user of the package may touch besides `connect` — the client, its
 * types, errors, txn builders and the small event emitter. Recipes import only this module
 * (they are built as a user could build them); api.ts adds the recipes on top for the package.
 *
 * Must never: export a recipe (recipes import this file: a recipe here would make a cycle).
 */

export { WardenClient } from './client.js';
export type { ClientTls, ConnectOptions, Consistency, GetOptions, MemberStatus, PutResult, RangeOptions, ReadOptions, TxnOpResult, TxnResult, WriteResult } from './client.js';
export { WardenError, ERROR_CODES, type ErrorCode } from '../shared/errors.js';
export { cmp, op, TxnBuilder, type Compare, type CompareOperator, type CreateOptions, type DeleteOptions, type PutOptions, type TxnOp } from './txn.js';
export { Session, type LeaseInfo, type LeaseTimeToLive, type SessionEvents } from './leases.js';
export { Watch, type WatchEvent, type WatchOptions, type WatchScope, type EventType } from './watch.js';
export type { Stat, Value, ValueAs, WardenNode } from './values.js';
export type { SnapshotDownload, SnapshotInfo, SnapshotOptions, SnapshotSummary } from './snapshot.js';
export type { CallOptions } from './requests.js';
export type { Access, AuthAdmin, AuthChange, AuthCredentials, AuthStatus, Permission, RoleAdmin, RoleInfo, UserAdmin, UserInfo } from './auth.js';
export { PROMOTE_DEADLINE_MS, type AlarmInfo, type MemberAdmin, type MemberAddOptions, type MemberChange, type MemberInfo, type MemberRole } from './members.js';
export type { ClientLogger } from './channel.js';
export type { ClientClock, OpenSocket, SocketLike } from './transport.js';
export { Emitter, type Listener } from './emitter.js';
