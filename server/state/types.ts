/**
 * The vocabulary of the replicated state machine: nodes and their stats, the write and read
 * operations it applies, and what each answers. Versioned Value: every committed write is one
 * cluster revision; every answer carries the revision it was served at (the Lamport clock a
 * client carries as its causal token).
 *
 * Must never: carry behaviour, or use a field name that says how a thing is stored.
 */

import type { ErrorCode } from '../../shared/errors.js';

export type LeaseId = number;

/** A node's metadata, ZooKeeper's Stat with etcd's revisions. */
export interface NodeStat {
  /** The revision that created this incarnation of the node. */
  readonly createRevision: number;
  /** The revision of the last change to the node's value (or its creation). */
  readonly modRevision: number;
  /** How many times the value changed since creation (0 when created). Compare-and-set uses it. */
  readonly version: number;
  /** How many times the set of children changed (a child created or deleted). */
  readonly childrenVersion: number;
  readonly numChildren: number;
  /** The lease an ephemeral node dies with, else null. */
  readonly lease: LeaseId | null;
}

export interface NodeView {
  readonly path: string;
  readonly value: Uint8Array;
  readonly stat: NodeStat;
}

/**
 * Limits of the proposing member that the state machine must apply identically everywhere,
 * carried inside the command (a member's flags may differ from another's; the log may not).
 */
export interface CommandLimits {
  /** Nodes one write may create or delete in all (parents, recursive deletes, a transaction's ops); also the ephemeral nodes one lease may hold. */
  readonly writeNodesMax?: number;
  /** The UTF-8 bytes of the paths of those nodes, in all (a node's work grows with its path); also of one lease's nodes. */
  readonly writePathBytesMax?: number;
  /** Bytes a transaction's answer may take (its gets' nodes). */
  readonly answerBytesMax?: number;
}

/** The replicated limits an error may name (the member maps each to its flag). */
export type StateLimitName = 'writeNodesMax' | 'writePathBytesMax' | 'answerBytesMax' | 'sessionsMax' | 'leasesMax' | 'usersMax' | 'rolesMax' | 'rolePermissionsMax' | 'userRolesMax';

export interface CreateOp {
  readonly op: 'create';
  readonly path: string;
  readonly value: Uint8Array;
  /** Append a zero-padded per-parent counter to the name; the answer carries the created path. */
  readonly sequential?: boolean;
  /** Make the node ephemeral: it dies with this lease. */
  readonly lease?: LeaseId;
  /** Create missing ancestors (as plain, empty nodes). */
  readonly parents?: boolean;
}

export interface PutOp {
  readonly op: 'put';
  readonly path: string;
  readonly value: Uint8Array;
  /** Compare-and-set: apply only if the node's version is this (-1: only if it does not exist). */
  readonly ifVersion?: number;
  readonly lease?: LeaseId;
}

export interface DeleteOp {
  readonly op: 'delete';
  readonly path: string;
  readonly ifVersion?: number;
  readonly recursive?: boolean;
}

export interface GetOp {
  readonly op: 'get';
  readonly path: string;
  /** Read as of this revision (history until compaction); absent: the latest. */
  readonly revision?: number;
}

export type WriteOp = CreateOp | PutOp | DeleteOp;
export type TxnOp = WriteOp | GetOp;

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'exists';
export type CompareOperator = '=' | '!=' | '<' | '>';

export interface Compare {
  readonly path: string;
  readonly target: CompareTarget;
  readonly operator: CompareOperator;
  /** A number for version and revisions, bytes for value, a boolean for exists. */
  readonly operand: number | Uint8Array | boolean;
}

export interface TxnCommand {
  readonly op: 'txn';
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
  readonly limits?: CommandLimits;
}

export interface CompactCommand {
  readonly op: 'compact';
  readonly revision: number;
}

export type NamespaceCommand = (WriteOp & { readonly limits?: CommandLimits }) | TxnCommand | CompactCommand;

export interface ErrorResult {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly message: string;
  readonly revision: number;
  /** The replicated limit the command passed, if that is why it was refused. */
  readonly limit?: StateLimitName;
}

export type OpResult =
  | { readonly op: 'create'; readonly path: string; readonly node: NodeView }
  | { readonly op: 'put'; readonly node: NodeView; readonly prevNode: NodeView | null }
  | { readonly op: 'delete'; readonly deleted: number }
  | { readonly op: 'get'; readonly node: NodeView };

export type CommandResult =
  | ({ readonly ok: true; readonly revision: number } & OpResult)
  | { readonly ok: true; readonly revision: number; readonly op: 'txn'; readonly succeeded: boolean; readonly results: readonly OpResult[] }
  | { readonly ok: true; readonly revision: number; readonly op: 'compact'; readonly compactRevision: number }
  | ErrorResult;

export type ChangeKind = 'create' | 'put' | 'delete';

/** One change at one revision, for the watch hub: the node after (null if deleted) and before. */
export interface ChangeEvent {
  readonly revision: number;
  readonly kind: ChangeKind;
  readonly path: string;
  readonly node: NodeView | null;
  readonly prevNode: NodeView | null;
}

/**
 * The event a path's change at one revision makes, from the node before and after it: the one
 * rule the namespace's history replay and the watch hub's live events both follow, so a replayed
 * stream reads as the live one did.
 */
export function eventKind(node: NodeView | null, prevNode: NodeView | null): ChangeKind {
  return node === null ? 'delete' : prevNode === null ? 'create' : 'put';
}
