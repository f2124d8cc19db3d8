/**
 * The client protocol's frames, as JSON Schemas: the single source of truth for what a member
 * accepts on its client port and what the client library sends (server/api validates every
 * frame against these with ajv; the types below are written to match them).
 *
 * A request is one JSON text frame `{ "id", "type", ...fields }`; `id` is the client's, echoed in
 * the response, so responses may come back in any order (Request Pipeline). A response is
 * `{ "id", "ok": true, "revision", ...result }` or `{ "id", "ok": false, "error": { "code",
 * "message", "leader"? } }` with a code from shared/errors.ts. Node values travel as base64.
 * A write may carry a client stamp `{ id, seq, ackedThrough }` from `register`: retried with the
 * same stamp, it is applied at most once (Idempotent Receiver).
 *
 * Must never: import server/ or client/ or a Node builtin (shared/ runs in browsers too); accept
 * a field the member does not understand (every object is closed: additionalProperties false).
 */

import { PATH_BYTES_MAX } from './paths.js';

/** The largest frame a member reads by default (a 1 MiB value in base64, and room around it). */
export const FRAME_BYTES_MAX_DEFAULT = 1.5 * 1024 * 1024;

/**
 * The limits a write applies when its log entry carries none (a member's flags at their
 * defaults: it then leaves them out, saving every entry their bytes). They give meaning to
 * entries already written: changing one needs a new entry format (server/state/codec.ts).
 */
export const WRITE_NODES_MAX_DEFAULT = 1_000;
export const WRITE_PATH_BYTES_MAX_DEFAULT = 256 * 1024;
export const ANSWER_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;

/** The most compares, or ops in one branch, a transaction can ever hold (members may allow fewer). */
export const TXN_OPS_CEILING = 1024;

// Twice the path limit in characters: a path a little past a member's --max-path-bytes reaches
// the size check, which names the limit (TOO_LARGE); far past it, the schema refuses it.
const path = { type: 'string', minLength: 1, maxLength: 2 * PATH_BYTES_MAX } as const;
const base64 = { type: 'string', contentEncoding: 'base64', pattern: '^[A-Za-z0-9+/]*={0,2}$' } as const;
const revision = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const version = { type: 'integer', minimum: -1, maximum: Number.MAX_SAFE_INTEGER } as const;
const lease = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;
// Integers past 2^53 cannot be told apart once parsed (JSON numbers are doubles): refused, so an
// answer never comes back under an id the client did not send.
const requestId = { anyOf: [{ type: 'string', minLength: 1, maxLength: 128 }, { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }] } as const;
const consistency = { enum: ['linearizable', 'serializable'] } as const;
const watchId = { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 } as const;

/** A session's secret, as `register` answers it: 128 random bits in 32 lowercase hex digits. */
const secret = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
/** A user or role name: printable ASCII without spaces (a client certificate's CN fits). */
const authName = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$' } as const;
const password = { type: 'string', minLength: 1, maxLength: 1024 } as const;
const safeCount = (minimum: number) => ({ type: 'integer', minimum, maximum: Number.MAX_SAFE_INTEGER }) as const;

const stamp = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'seq', 'ackedThrough', 'secret'],
  properties: { id: safeCount(1), seq: safeCount(1), ackedThrough: safeCount(0), secret },
} as const;

const createOp = {
  type: 'object',
  additionalProperties: false,
  required: ['op', 'path'],
  properties: { op: { const: 'create' }, path, value: base64, sequential: { type: 'boolean' }, lease, parents: { type: 'boolean' } },
} as const;
const putOp = {
  type: 'object',
  additionalProperties: false,
  required: ['op', 'path'],
  properties: { op: { const: 'put' }, path, value: base64, ifVersion: version, lease },
} as const;
const deleteOp = {
  type: 'object',
  additionalProperties: false,
  required: ['op', 'path'],
  properties: { op: { const: 'delete' }, path, ifVersion: version, recursive: { type: 'boolean' } },
} as const;
const getOp = {
  type: 'object',
  additionalProperties: false,
  required: ['op', 'path'],
  properties: { op: { const: 'get' }, path, revision },
} as const;
const txnOp = { oneOf: [createOp, putOp, deleteOp, getOp] } as const;
const compare = {
  type: 'object',
  additionalProperties: false,
  required: ['path', 'target', 'operator', 'operand'],
  properties: {
    path,
    target: { enum: ['value', 'version', 'createRevision', 'modRevision', 'exists'] },
    operator: { enum: ['=', '!=', '<', '>'] },
    // A base64 string for value, an integer for versions and revisions, a boolean for exists.
    operand: { anyOf: [base64, { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }, { type: 'boolean' }] },
  },
} as const;

/** A txn op's fields without `op`: a top-level request names its kind in `type` instead. */
function withoutOp<P extends { op: unknown }>(properties: P): Omit<P, 'op'> {
  const { op: _op, ...rest } = properties;
  return rest;
}

/** Builds the schema of one request type: the common envelope plus its own fields. */
function request<T extends string, P extends Record<string, unknown>>(type: T, properties: P, required: readonly (keyof P & string)[] = []) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'type', ...required],
    properties: { id: requestId, type: { const: type }, ...properties },
  } as const;
}

/** One schema per request type, by type. */
export const REQUEST_SCHEMAS = {
  // nonce: the client's own random text; a register retried with it answers the same session.
  register: request('register', { nonce: { type: 'string', minLength: 16, maxLength: 64 } }),
  keepalive: request('keepalive', { clientId: safeCount(1), secret }, ['clientId', 'secret']),
  create: request('create', { ...withoutOp(createOp.properties), client: stamp }, ['path']),
  // prevNode: also answer the node as it was before (with its value), as etcd's prev_kv.
  put: request('put', { ...withoutOp(putOp.properties), prevNode: { type: 'boolean' }, client: stamp }, ['path']),
  delete: request('delete', { ...withoutOp(deleteOp.properties), client: stamp }, ['path']),
  // The member's --max-txn-ops (128 by default) bounds each list; 1,024 is the protocol's ceiling.
  txn: request('txn', { compare: { type: 'array', maxItems: TXN_OPS_CEILING, items: compare }, success: { type: 'array', maxItems: TXN_OPS_CEILING, items: txnOp }, failure: { type: 'array', maxItems: TXN_OPS_CEILING, items: txnOp }, client: stamp }),
  get: request('get', { path, revision, consistency, minRevision: revision }, ['path']),
  // A page of child names: at most `limit`, after the name `after` (the answer's `next` goes on).
  children: request('children', { path, consistency, minRevision: revision, limit: { type: 'integer', minimum: 1, maximum: 100_000 }, after: { type: 'string', minLength: 1, maxLength: PATH_BYTES_MAX } }, ['path']),
  range: request('range', { path, limit: { type: 'integer', minimum: 1, maximum: 10_000 }, after: path, revision, consistency, minRevision: revision }, ['path', 'limit']),
  compact: request('compact', { revision }, ['revision']),
  status: request('status', {}),
  // A consistent snapshot of the member's store, for backups, pulled a chunk at a time: without
  // `cursor` it opens one and answers chunk 0; then `cursor` with the next `seq` (1, 2, …), on the
  // same connection, until an answer says `last`. Linearizable by default: it holds every write
  // acknowledged before it was asked for; serializable: what this member has applied.
  snapshot: request('snapshot', { cursor: safeCount(1), seq: safeCount(1), consistency }),
  // Leases. A TTL below the cluster's minimum (twice the longest election timeout) is refused by
  // the member with INVALID_ARGUMENT; the schema bounds it at 24 hours.
  // lease: an id the client picks (as etcd's LeaseGrant ID), so a retried grant is idempotent.
  leaseGrant: request('leaseGrant', { ttlMs: { type: 'integer', minimum: 1, maximum: 24 * 60 * 60 * 1000 }, lease: safeCount(1) }, ['ttlMs']),
  leaseRevoke: request('leaseRevoke', { lease }, ['lease']),
  // One frame keeps many leases alive (a client's whole set, every third of its shortest TTL).
  leaseKeepAlive: request('leaseKeepAlive', { leases: { type: 'array', minItems: 1, maxItems: 10_000, items: lease } }, ['leases']),
  leaseTimeToLive: request('leaseTimeToLive', { lease, paths: { type: 'boolean' } }, ['lease']),
  // Pages of leases in id order: at most `limit` (default and most 10,000), after lease id `after`.
  leaseList: request('leaseList', { limit: { type: 'integer', minimum: 1, maximum: 10_000 }, after: safeCount(0) }),
  // Watches, multiplexed on the connection by a watch id the client picks. Pushes carry
  // "watch": id (events, progress, or canceled) and no request id.
  watch: request(
    'watch',
    {
      watchId,
      path,
      scope: { enum: ['node', 'children', 'subtree'] },
      fromRevision: safeCount(1),
      prevNode: { type: 'boolean' },
      noPut: { type: 'boolean' },
      noDelete: { type: 'boolean' },
      progressNotify: { type: 'boolean' },
    },
    ['watchId', 'path'],
  ),
  cancelWatch: request('cancelWatch', { watchId }, ['watchId']),
  // A bookmark now: a progress push for each watch on the connection, then the answer.
  watchProgress: request('watchProgress', {}),
  // Auth. `authenticate` with a user and password (or a token an earlier one answered): the
  // connection then speaks as that user, and the answer's token (it expires) opens the next one.
  authenticate: request('authenticate', { user: authName, password, token: { type: 'string', minLength: 1, maxLength: 1024 } }),
  // Whether auth is on, and who this connection speaks as. Needs no credentials.
  authStatus: request('authStatus', {}),
  authEnable: request('authEnable', {}),
  authDisable: request('authDisable', {}),
  // Without a password: a user that authenticates by client certificate only (its CN).
  userAdd: request('userAdd', { name: authName, password }, ['name']),
  userDelete: request('userDelete', { name: authName }, ['name']),
  // A user who is not an admin changes its own password only with the one it has (`oldPassword`).
  userPasswd: request('userPasswd', { name: authName, password, oldPassword: password }, ['name', 'password']),
  userGrantRole: request('userGrantRole', { name: authName, role: authName }, ['name', 'role']),
  userRevokeRole: request('userRevokeRole', { name: authName, role: authName }, ['name', 'role']),
  userList: request('userList', {}),
  roleAdd: request('roleAdd', { name: authName }, ['name']),
  roleDelete: request('roleDelete', { name: authName }, ['name']),
  // A grant on a path covers the path and its whole subtree (`/` covers everything).
  roleGrant: request('roleGrant', { name: authName, path, access: { enum: ['read', 'write', 'admin'] } }, ['name', 'path', 'access']),
  roleRevoke: request('roleRevoke', { name: authName, path }, ['name', 'path']),
  roleList: request('roleList', {}),
  // Membership (the leader answers; another member refuses NOT_LEADER with the leader's hint).
  // memberAdd adds a learner; with `learner: false` it is promoted once it has caught up.
  memberList: request('memberList', {}),
  memberAdd: request('memberAdd', { name: authName, peerUrl: { type: 'string', minLength: 1, maxLength: 1024, pattern: '^wss?://' }, learner: { type: 'boolean' } }, ['name', 'peerUrl']),
  memberPromote: request('memberPromote', { name: authName }, ['name']),
  memberRemove: request('memberRemove', { name: authName }, ['name']),
  // The cluster's active alarms (NO_SPACE past --quota-bytes), as this member's state holds them.
  alarmList: request('alarmList', {}),
} as const;

export type RequestType = keyof typeof REQUEST_SCHEMAS;
export const REQUEST_TYPES = Object.keys(REQUEST_SCHEMAS) as RequestType[];

/** Whether `id` is a request id a member accepts (and so echoes): what the envelope's schema says. */
export function isRequestId(id: unknown): id is string | number {
  if (typeof id === 'string') return id.length >= 1 && id.length <= 128;
  return Number.isSafeInteger(id);
}

/** The envelope every frame must have before its type is known. */
export const ENVELOPE_SCHEMA = {
  type: 'object',
  required: ['id', 'type'],
  properties: { id: requestId, type: { type: 'string' } },
} as const;
