/**
 * How the state machine lies in an ordered key-value store (the KvEngine seam): the keys, the
 * record encodings, the write batch for one applied group, and the image rebuilt from a full
 * scan at start. One batch carries the group's changes and the meta record with the applied
 * index, so the store always holds the committed log applied exactly up to that index.
 *
 * Keys (bytewise order is the order that matters):
 *   0x01                                meta: format, applied index, log time, revisions, counters
 *                                       (first in key order, so a snapshot stream begins with it)
 *   0x02                                the Raft snapshot base an installed snapshot came with
 *                                       (written by the storage layer; not part of the state)
 *   "N" path 0x00 revision(u64 BE)      a node version from `revision` on; the path's UTF-8 with
 *                                       each "/" written as 0x01, so keys sort as comparePaths
 *                                       does (no valid path holds a byte below 0x20) and all
 *                                       versions of a path sit together, oldest first
 *   0x03                                the auth table: whether auth is on, users, roles (one record:
 *                                       it changes rarely, and only by an admin)
 *   0x04                                the member table: members added (name, peer URL, role) and
 *                                       the names of removed ones (one record)
 *   0x05                                the alarm table: [member, kind, raised at, used, quota]
 *                                       per active alarm (one record; absent when none)
 *   "L" leaseId(u64 BE)                 a lease (its owner, when auth made one)
 *   "S" clientId(u64 BE)                a client session (its answers apart, so a write that
 *   "R" clientId(u64 BE) seq(u64 BE)    records one answer does not rewrite all the others)
 * Values are a CRC32C (u32 LE) of the rest, then MessagePack; a node version is nil when the path
 * was deleted at that revision. The checksum is ours because the RocksDB binding reads scans
 * with checksum verification off, and the store is loaded (and snapshots streamed) by scans.
 *
 * Must never: change the meaning of a stored record without bumping STORE_FORMAT (a store
 * outlives the code that wrote it); load a record it cannot read (it throws, naming the key).
 */

import { Decoder, Encoder } from '@msgpack/msgpack';
import { crc32c } from '@node-rs/crc32';
import { ROOT } from '../../shared/paths.js';
import type { SnapshotSummary } from '../../shared/snapshot-file.js';
import type { ChangeTracker, VersionChange } from './changes.js';
import type { KvWrite } from './kv-engine.js';
import type { Lease } from './leases.js';
import type { AuthImage } from './auth.js';
import { authFields, decodeAuth } from './store-auth.js';
import { decodeMembers, membersFields } from './store-members.js';
import { alarmsFields, decodeAlarms, type Alarm } from './alarms.js';
import type { MembersImage } from './members.js';
import type { StoredNode } from './namespace.js';
import type { SessionHeader, SessionRecord } from './sessions.js';
import type { StateImage, StateMachine, StateMeta } from './state-machine.js';

/** Bumped whenever a stored record changes meaning. */
/** 2: leases keep their grant time, not a deadline (keep-alives live on the leader); the meta record holds the lease epoch. */
/** 3: a session keeps its secret, its register nonce and the highest seq whose answer it dropped; answers hold no values. */
export const STORE_FORMAT = 3;

const META = 0x01;
/** Reserved for the storage layer: the Raft snapshot base of an installed snapshot. */
export const INSTALLED_BASE_KEY = new Uint8Array([0x02]);
const AUTH = 0x03;
const AUTH_KEY = new Uint8Array([AUTH]);
const MEMBERS = 0x04;
const ALARMS = 0x05;
const MEMBERS_KEY = new Uint8Array([MEMBERS]);
const ALARMS_KEY = new Uint8Array([ALARMS]);
const NODE = 0x4e; // N
const LEASE = 0x4c; // L
const SESSION = 0x53; // S
const RESULT = 0x52; // R
const SLASH = 0x2f;
const SLASH_IN_KEY = 0x01;
const PATH_END = 0x00;

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export const META_KEY = new Uint8Array([META]);

/** The batch that makes the store hold `machine` as it is now, given what changed since the last one. */
export function encodeChanges(machine: StateMachine, changes: ChangeTracker): KvWrite[] {
  const batch: KvWrite[] = [];
  // In the order they happened: a version made and compacted away in one group must end deleted.
  for (const v of changes.versions) {
    batch.push('dropped' in v ? { type: 'del', key: nodeKey(v.path, v.since) } : { type: 'put', key: nodeKey(v.path, v.since), value: encodeNode(v.node) });
  }
  for (const id of changes.leases) {
    const lease = machine.leases.get(id);
    batch.push(lease === undefined ? { type: 'del', key: leaseKey(id) } : { type: 'put', key: leaseKey(id), value: encodeLease(lease) });
  }
  for (const id of changes.sessions) {
    const header = machine.sessions.header(id);
    batch.push(header === undefined ? { type: 'del', key: sessionKey(id) } : { type: 'put', key: sessionKey(id), value: encodeSession(header) });
  }
  for (const [id, seqs] of changes.results) {
    for (const seq of seqs) {
      const result = machine.sessions.recordedResult(id, seq);
      batch.push(result === undefined ? { type: 'del', key: resultKey(id, seq) } : { type: 'put', key: resultKey(id, seq), value: sealed(result) });
    }
  }
  if (changes.auth) batch.push({ type: 'put', key: AUTH_KEY, value: sealed(authFields(machine.auth.image())) });
  if (changes.members) batch.push({ type: 'put', key: MEMBERS_KEY, value: sealed(membersFields(machine.members.image())) });
  if (changes.alarms) batch.push(machine.alarms.empty ? { type: 'del', key: ALARMS_KEY } : { type: 'put', key: ALARMS_KEY, value: sealed(alarmsFields(machine.alarms.list())) });
  batch.push(metaWrite(machine));
  return batch;
}

function metaWrite(machine: StateMachine): KvWrite {
  const m = machine.meta;
  return { type: 'put', key: META_KEY, value: sealed([STORE_FORMAT, m.appliedIndex, m.logTimeMs, m.revision, m.compactRevision, m.nextLeaseId, m.nextClientId, m.sessionActivity, m.leaseEpoch]) };
}

/**
 * The batch that writes the whole of `machine` into an empty store. A store kept up by
 * encodeChanges holds exactly these bytes: the layout has one spelling per state.
 */
export function encodeFull(machine: StateMachine): KvWrite[] {
  const batch: KvWrite[] = [];
  for (const v of machine.namespace.versions()) {
    // The root's first version is where every store begins, and is never written.
    if (v.path === ROOT && v.since === 0) continue;
    batch.push({ type: 'put', key: nodeKey(v.path, v.since), value: encodeNode(v.node) });
  }
  for (const lease of machine.leases.dump().leases) batch.push({ type: 'put', key: leaseKey(lease.id), value: encodeLease(lease) });
  for (const session of machine.sessions.records()) {
    batch.push({ type: 'put', key: sessionKey(session.id), value: encodeSession(session) });
    for (const [seq, result] of session.results) batch.push({ type: 'put', key: resultKey(session.id, seq), value: sealed(result) });
  }
  // Written once auth was ever touched (a store kept by encodeChanges has it from then on).
  const auth = machine.auth.image();
  if (auth.revision > 0) batch.push({ type: 'put', key: AUTH_KEY, value: sealed(authFields(auth)) });
  if (!machine.members.empty) batch.push({ type: 'put', key: MEMBERS_KEY, value: sealed(membersFields(machine.members.image())) });
  if (!machine.alarms.empty) batch.push({ type: 'put', key: ALARMS_KEY, value: sealed(alarmsFields(machine.alarms.list())) });
  batch.push(metaWrite(machine));
  return batch;
}

/**
 * The image of a whole store, from its entries in key order; null for an empty store (a new
 * member). Throws, naming the key, on a record it cannot read.
 */
export function imageFromEntries(entries: Iterable<readonly [Uint8Array, Uint8Array]>): StateImage | null {
  let meta: StateMeta | null = null;
  const versions: VersionChange[] = [];
  const leases: Lease[] = [];
  const headers: SessionHeader[] = [];
  const results = new Map<number, [number, unknown][]>();
  let auth: AuthImage | undefined;
  let members: MembersImage | undefined;
  let alarms: Alarm[] | undefined;
  for (const [key, value] of entries) {
    const where = (): string => `state store: cannot read the record at key ${hex(key)}`;
    let fields: unknown;
    try {
      fields = decoder.decode(opened(value));
    } catch (error) {
      throw new Error(`${where()}: ${(error as Error).message}`);
    }
    if (key.length === 1 && key[0] === INSTALLED_BASE_KEY[0]) continue;
    switch (key[0]) {
      case META:
        meta = decodeMeta(fields, where);
        break;
      case AUTH:
        auth = decodeAuth(fields, where);
        break;
      case MEMBERS:
        members = decodeMembers(fields, where);
        break;
      case ALARMS:
        alarms = decodeAlarms(fields, where);
        break;
      case NODE: {
        const { path, since } = decodeNodeKey(key, where);
        versions.push({ path, since, node: decodeNode(path, fields, where) });
        break;
      }
      case LEASE: {
        const owner = Array.isArray(fields) && fields.length === 3 ? (fields[2] as unknown) : undefined;
        if (owner !== undefined && typeof owner !== 'string') throw new Error(`${where()}: a lease's owner is not a name`);
        const [ttlMs, grantedAtMs] = numbers(owner === undefined ? fields : (fields as unknown[]).slice(0, 2), 2, where);
        leases.push({ id: readU64(key, 1, where), ttlMs: ttlMs!, grantedAtMs: grantedAtMs!, ...(owner === undefined ? {} : { owner }) });
        break;
      }
      case SESSION: {
        if (!Array.isArray(fields) || (fields.length !== 6 && fields.length !== 7) || typeof fields[3] !== 'string' || (fields[4] !== null && typeof fields[4] !== 'string')) throw new Error(`${where()}: not a session`);
        if (fields.length === 7 && typeof fields[6] !== 'string') throw new Error(`${where()}: a session's owner is not a name`);
        const [lastActiveMs, lastActivity, ackedThrough] = numbers(fields.slice(0, 3), 3, where);
        const [forgottenThrough] = numbers(fields.slice(5, 6), 1, where);
        headers.push({ id: readU64(key, 1, where), secret: fields[3] as string, ...(fields.length === 7 ? { owner: fields[6] as string } : {}), nonce: fields[4] as string | null, lastActiveMs: lastActiveMs!, lastActivity: lastActivity!, ackedThrough: ackedThrough!, forgottenThrough: forgottenThrough! });
        break;
      }
      case RESULT: {
        const id = readU64(key, 1, where);
        let list = results.get(id);
        if (list === undefined) results.set(id, (list = []));
        list.push([readU64(key, 9, where), fields]);
        break;
      }
      default:
        throw new Error(`${where()}: unknown record kind`);
    }
  }
  if (meta === null) {
    if (versions.length + leases.length + headers.length + results.size > 0 || auth !== undefined || members !== undefined || alarms !== undefined) throw new Error('state store: records without a meta record');
    return null;
  }
  const sessions = headers.map((h): SessionRecord => ({ ...h, results: results.get(h.id) ?? [] }));
  return { meta, versions, leases, sessions, ...(auth === undefined ? {} : { auth }), ...(members === undefined ? {} : { members }), ...(alarms === undefined ? {} : { alarms }) };
}

export function nodeKey(path: string, since: number): Uint8Array {
  const pathBytes = utf8.encode(path);
  const key = new Uint8Array(1 + pathBytes.length + 1 + 8);
  key[0] = NODE;
  for (let i = 0; i < pathBytes.length; i++) key[1 + i] = pathBytes[i] === SLASH ? SLASH_IN_KEY : pathBytes[i]!;
  key[1 + pathBytes.length] = PATH_END;
  writeU64(key, 2 + pathBytes.length, since);
  return key;
}

function leaseKey(id: number): Uint8Array {
  const key = new Uint8Array(9);
  key[0] = LEASE;
  writeU64(key, 1, id);
  return key;
}

function sessionKey(id: number): Uint8Array {
  const key = new Uint8Array(9);
  key[0] = SESSION;
  writeU64(key, 1, id);
  return key;
}

function resultKey(id: number, seq: number): Uint8Array {
  const key = new Uint8Array(17);
  key[0] = RESULT;
  writeU64(key, 1, id);
  writeU64(key, 9, seq);
  return key;
}

function encodeLease(lease: Lease): Uint8Array {
  return sealed(lease.owner === undefined ? [lease.ttlMs, lease.grantedAtMs] : [lease.ttlMs, lease.grantedAtMs, lease.owner]);
}

function encodeSession(header: SessionHeader): Uint8Array {
  const fields = [header.lastActiveMs, header.lastActivity, header.ackedThrough, header.secret, header.nonce, header.forgottenThrough];
  return sealed(header.owner === undefined ? fields : [...fields, header.owner]);
}

function encodeNode(node: StoredNode | null): Uint8Array {
  if (node === null) return sealed(null);
  const stat = node.stat;
  return sealed([node.value, stat.createRevision, stat.modRevision, stat.version, stat.childrenVersion, stat.numChildren, stat.lease]);
}

function decodeNode(path: string, fields: unknown, where: () => string): StoredNode | null {
  if (fields === null) return null;
  if (!Array.isArray(fields) || fields.length !== 7 || !(fields[0] instanceof Uint8Array)) throw new Error(`${where()}: not a node`);
  const [createRevision, modRevision, version, childrenVersion, numChildren] = numbers(fields.slice(1, 6), 5, where);
  const lease = fields[6] as unknown;
  if (lease !== null && !Number.isInteger(lease)) throw new Error(`${where()}: bad lease`);
  // Copied out of the scan's buffer: a node must not keep a whole block of the store alive.
  return {
    path,
    value: new Uint8Array(fields[0]),
    stat: { createRevision: createRevision!, modRevision: modRevision!, version: version!, childrenVersion: childrenVersion!, numChildren: numChildren!, lease: lease as number | null },
  };
}

function decodeMeta(fields: unknown, where: () => string): StateMeta {
  if (!Array.isArray(fields) || fields[0] !== STORE_FORMAT) {
    throw new Error(`${where()}: store format ${Array.isArray(fields) ? String(fields[0]) : '?'} is not ${STORE_FORMAT}, which this version of Warden reads`);
  }
  const [appliedIndex, logTimeMs, revision, compactRevision, nextLeaseId, nextClientId, sessionActivity, leaseEpoch] = numbers(fields.slice(1), 8, where);
  return { appliedIndex: appliedIndex!, logTimeMs: logTimeMs!, revision: revision!, compactRevision: compactRevision!, nextLeaseId: nextLeaseId!, leaseEpoch: leaseEpoch!, nextClientId: nextClientId!, sessionActivity: sessionActivity! };
}

function decodeNodeKey(key: Uint8Array, where: () => string): { path: string; since: number } {
  const end = key.length - 9;
  if (end < 2 || key[end] !== PATH_END) throw new Error(`${where()}: not a node key`);
  const pathBytes = key.slice(1, end);
  for (let i = 0; i < pathBytes.length; i++) if (pathBytes[i] === SLASH_IN_KEY) pathBytes[i] = SLASH;
  let path: string;
  try {
    path = utf8Decoder.decode(pathBytes);
  } catch {
    throw new Error(`${where()}: the path is not UTF-8`);
  }
  return { path, since: readU64(key, end + 1, where) };
}

function numbers(fields: unknown, count: number, where: () => string): number[] {
  if (!Array.isArray(fields) || fields.length !== count || !fields.every((f) => typeof f === 'number' && Number.isFinite(f))) {
    throw new Error(`${where()}: expected ${count} numbers`);
  }
  return fields as number[];
}

/** Big-endian, so numeric order is byte order; ids and revisions stay below 2^53. */
function writeU64(into: Uint8Array, at: number, n: number): void {
  const high = Math.floor(n / 0x1_0000_0000);
  const low = n >>> 0;
  into[at] = high >>> 24;
  into[at + 1] = (high >>> 16) & 0xff;
  into[at + 2] = (high >>> 8) & 0xff;
  into[at + 3] = high & 0xff;
  into[at + 4] = low >>> 24;
  into[at + 5] = (low >>> 16) & 0xff;
  into[at + 6] = (low >>> 8) & 0xff;
  into[at + 7] = low & 0xff;
}

function readU64(from: Uint8Array, at: number, where: () => string): number {
  if (from.length < at + 8) throw new Error(`${where()}: key too short`);
  const high = ((from[at]! << 24) >>> 0) + (from[at + 1]! << 16) + (from[at + 2]! << 8) + from[at + 3]!;
  const low = ((from[at + 4]! << 24) >>> 0) + (from[at + 5]! << 16) + (from[at + 6]! << 8) + from[at + 7]!;
  return high * 0x1_0000_0000 + low;
}

const CRC_BYTES = 4;

/** A value as stored: the CRC32C of its MessagePack encoding, then the encoding. */
function sealed(fields: unknown): Uint8Array {
  const body = encoder.encodeSharedRef(fields);
  const value = new Uint8Array(CRC_BYTES + body.length);
  value.set(body, CRC_BYTES);
  const crc = crc32c(value.subarray(CRC_BYTES) as Buffer) >>> 0;
  value[0] = crc & 0xff;
  value[1] = (crc >>> 8) & 0xff;
  value[2] = (crc >>> 16) & 0xff;
  value[3] = crc >>> 24;
  return value;
}

/** The MessagePack part of a stored value, after its checksum was checked. */
function opened(value: Uint8Array): Uint8Array {
  const bytes = plain(value);
  if (bytes.length < CRC_BYTES) throw new Error('shorter than its checksum');
  const stored = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  const body = bytes.subarray(CRC_BYTES);
  if ((crc32c(body as Buffer) >>> 0) !== stored) throw new Error('checksum mismatch (the store is damaged)');
  return body;
}

/** The fields of a stored value (for the storage layer, which shares the layout). */
export function openValue(value: Uint8Array): unknown {
  return decoder.decode(opened(value));
}

/** A value in the stored layout (for the storage layer's own key). */
export function sealValue(fields: unknown): Uint8Array {
  return sealed(fields);
}

/** A plain Uint8Array over the same bytes (a Buffer's subarrays would be Buffers). */
function plain(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(bytes: Uint8Array): string {
  const shown = [...bytes.subarray(0, 48)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return bytes.length > 48 ? `${shown}…` : shown;
}


/**
 * Counts a store's records as they stream past, in key order, without decoding node values: a
 * path's versions sit together oldest first, so the path is live when its last version is not
 * the deletion marker (a sealed MessagePack nil).
 */
export class StoreTally {
  private meta: StateMeta | null = null;
  private nodes = 0;
  private versions = 0;
  private leases = 0;
  private sessions = 0;
  /** The current path's key bytes (without the revision), and whether its latest version so far is live. */
  private pathKey: Uint8Array | null = null;
  private pathLive = false;

  add(key: Uint8Array, value: Uint8Array): void {
    switch (key[0]) {
      case META:
        if (key.length === 1) this.meta = decodeMeta(decoder.decode(opened(value)), () => 'snapshot: the meta record');
        break;
      case NODE: {
        this.versions += 1;
        const pathKey = key.subarray(0, key.length - 8);
        if (this.pathKey === null || !sameBytes(this.pathKey, pathKey)) {
          this.closePath();
          this.pathKey = pathKey;
        }
        this.pathLive = !(value.length === CRC_BYTES + 1 && value[CRC_BYTES] === 0xc0);
        break;
      }
      case LEASE:
        this.leases += 1;
        break;
      case SESSION:
        this.sessions += 1;
        break;
    }
  }

  summary(): SnapshotSummary {
    this.closePath();
    if (this.meta === null) throw new Error('snapshot: no meta record was seen');
    const { appliedIndex, revision, compactRevision } = this.meta;
    return { appliedIndex, revision, compactRevision, nodes: this.nodes, versions: this.versions, leases: this.leases, sessions: this.sessions };
  }

  private closePath(): void {
    if (this.pathKey !== null && this.pathLive && !isRootKey(this.pathKey)) this.nodes += 1;
    this.pathKey = null;
    this.pathLive = false;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** "N" "/"(as 0x01) 0x00: the root's versions. */
function isRootKey(pathKey: Uint8Array): boolean {
  return pathKey.length === 3 && pathKey[1] === SLASH_IN_KEY && pathKey[2] === PATH_END;
}
