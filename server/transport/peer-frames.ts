/**
 * What a peer may send, checked on arrival as client frames are (shared/protocol.ts): each
 * frame's kind and every field the receiver reads, with its type and range, down to each Raft
 * message's fields and each log entry. A frame that fails is refused whole (the transport logs
 * it and drops it), so nothing from the network reaches the core or the state machine through a
 * cast. Answers to forwarded writes (`fwd-ok`) carry a state-machine result, checked for its
 * shape (`ok`, and `revision` when it has one): its contents are the leader's own answer.
 *
 * Pattern: a hand-written validator, because frames are MessagePack with byte arrays (which a
 * JSON Schema validator does not type) and must be checked on the hot path without copying.
 *
 * Must never: accept a frame whose field the receiver reads with the wrong type or out of range;
 * throw (it answers null).
 */

import { isErrorCode } from '../../shared/errors.js';
import type { Entry, Message, SnapshotMeta } from '../raft/types.js';

type Fields = Record<string, unknown>;

const count = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const name = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= 256;
const bool = (value: unknown): value is boolean => typeof value === 'boolean';
const bytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;
const object = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
const ENTRY_TYPES = new Set(['normal', 'noop', 'config']);

function entry(value: unknown): value is Entry {
  return object(value) && count(value['index']) && count(value['term']) && ENTRY_TYPES.has(value['type'] as string) && bytes(value['data']);
}

function snapshotMeta(value: unknown): value is SnapshotMeta {
  return object(value) && count(value['index']) && count(value['term']) && object(value['conf']) && Array.isArray(value['conf']['voters']) && value['conf']['voters'].every(name);
}

const readRound = (value: unknown): boolean => value === null || count(value);

/** The fields of each Raft message type beyond from, to and term. */
const MESSAGE_FIELDS: Record<Message['type'], (m: Fields) => boolean> = {
  PreVote: (m) => count(m['lastLogIndex']) && count(m['lastLogTerm']),
  PreVoteResp: (m) => bool(m['reject']),
  Vote: (m) => count(m['lastLogIndex']) && count(m['lastLogTerm']) && bool(m['transfer']),
  VoteResp: (m) => bool(m['reject']),
  Append: (m) => count(m['prevLogIndex']) && count(m['prevLogTerm']) && count(m['commit']) && Array.isArray(m['entries']) && m['entries'].every(entry),
  AppendResp: (m) => bool(m['reject']) && count(m['index']) && count(m['rejectHint']) && count(m['hintTerm']),
  Heartbeat: (m) => count(m['commit']) && readRound(m['readRound']),
  HeartbeatResp: (m) => readRound(m['readRound']),
  // `staged` is a member's claim about its own disk: from a peer it would let the core install a snapshot with no state.
  Snapshot: (m) => object(m['snapshot']) && snapshotMeta(m['snapshot']['meta']) && (m['snapshot']['data'] === null || bytes(m['snapshot']['data'])) && m['snapshot']['staged'] === undefined,
  TimeoutNow: () => true,
  ReadIndex: (m) => name(m['requestId']),
  ReadIndexResp: (m) => name(m['requestId']) && count(m['index']),
};

/** Whether `value` is a Raft message whose every field the core reads is present and well typed. */
function isMessage(value: unknown): value is Message {
  if (!object(value) || !name(value['from']) || !name(value['to']) || !count(value['term'])) return false;
  const check = MESSAGE_FIELDS[value['type'] as Message['type']] as ((m: Fields) => boolean) | undefined;
  return check !== undefined && check(value);
}

/** A Raft message, checked whole; null if any field the core reads is missing or of the wrong type. */
export function validMessage(value: unknown): Message | null {
  return isMessage(value) ? value : null;
}

const leaseIds = (value: unknown): boolean => Array.isArray(value) && value.length <= 100_000 && value.every((id) => count(id) && id > 0);

function leaseRequest(value: unknown): boolean {
  if (!object(value)) return false;
  if (value['user'] !== undefined && (typeof value['user'] !== 'string' || value['user'].length === 0 || value['user'].length > 128)) return false;
  if (value['op'] === 'keepAlive') return leaseIds(value['leases']);
  if (value['op'] === 'timeToLive') return count(value['lease']) && value['lease'] > 0;
  return false;
}


/** Each frame kind's fields. */
const FRAME_FIELDS: Record<string, (f: Fields) => boolean> = {
  hello: (f) =>
    name(f['from']) &&
    typeof f['clientUrl'] === 'string' &&
    (f['cluster'] === undefined || typeof f['cluster'] === 'string') &&
    (f['ts'] === undefined || typeof f['ts'] === 'number') &&
    (f['nonce'] === undefined || name(f['nonce'])) &&
    (f['proof'] === undefined || name(f['proof'])),
  raft: (f) => validMessage(f['m']) !== null,
  fwd: (f) => count(f['id']) && bytes(f['entry']),
  'fwd-ok': (f) => count(f['id']) && object(f['result']) && bool(f['result']['ok']) && (f['result']['revision'] === undefined || count(f['result']['revision'])),
  'fwd-err': (f) => count(f['id']) && isErrorCode(f['code']) && typeof f['message'] === 'string' && (f['leader'] === null || name(f['leader'])),
  lease: (f) => count(f['id']) && leaseRequest(f['request']),
  'lease-ok': (f) => count(f['id']) && Array.isArray(f['answers']) && f['answers'].every((a) => object(a) && bool(a['ok'])),
  snap: (f) => count(f['id']) && validMessage(f['m'])?.type === 'Snapshot',
  'snap-chunk': (f) => count(f['id']) && bytes(f['chunk']),
  'snap-end': (f) => count(f['id']),
};

/** Whether `value` is a peer frame whose every field the receiver reads is present and well typed (F: the receiver's frame union, which FRAME_FIELDS describes). */
function isFrame<F extends { readonly k: string }>(value: unknown): value is F {
  if (!object(value) || typeof value['k'] !== 'string') return false;
  const check = FRAME_FIELDS[value['k']];
  return check !== undefined && check(value);
}

/** A peer frame whose every field the receiver reads is present and well typed, or null. */
export function validFrame<F extends { readonly k: string }>(value: unknown): F | null {
  try {
    return isFrame<F>(value) ? value : null;
  } catch {
    return null;
  }
}
