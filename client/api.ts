/**
 * What the package exports besides `connect` (the same for Node and browsers): the client's
 * types, errors and the txn builders. Recipes are exported from here too, once each is built
 * on the public client only.
 */

export { WardenClient } from './client.js';
export type { ConnectOptions, Consistency, GetOptions, MemberStatus, PutResult, RangeOptions, ReadOptions, TxnOpResult, TxnResult, WriteResult } from './client.js';
export { WardenError, ERROR_CODES, type ErrorCode } from '../shared/errors.js';
export { cmp, op, TxnBuilder, type Compare, type CompareOperator, type CreateOptions, type DeleteOptions, type PutOptions, type TxnOp } from './txn.js';
export { Session, type LeaseInfo, type LeaseTimeToLive, type SessionEvents } from './leases.js';
export { Watch, type WatchEvent, type WatchOptions, type WatchScope, type EventType } from './watch.js';
export type { Stat, Value, ValueAs, WardenNode } from './values.js';
export type { CallOptions } from './requests.js';
export type { ClientLogger } from './channel.js';
export type { ClientClock, OpenSocket, SocketLike } from './transport.js';
