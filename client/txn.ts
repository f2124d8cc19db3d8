/**
 * Transactions, typed: `client.txn().if(cmp...).do(op...).else(op...).commit()`. A txn is
 * applied in one revision, all or nothing: the compares are evaluated against the state at that
 * revision, then the `do` ops (all compares held) or the `else` ops. (`do`, not `then`: a
 * builder with a `then` method is a thenable, and `await`ing one by mistake would hang.) A `get` of a node that
 * does not exist refuses the whole transaction (NO_NODE): guard it with `cmp.exists`.
 *
 * Must never: build a frame the protocol refuses for its shape (the builders keep to
 * shared/protocol.ts); send a value in a spelling other than canonical base64.
 */

import { encodeValue, type Value } from './values.js';

export type CompareOperator = '=' | '!=' | '<' | '>';

/** One compare of a txn, built by `cmp`. */
export interface Compare {
  readonly path: string;
  readonly target: 'value' | 'version' | 'createRevision' | 'modRevision' | 'exists';
  readonly operator: CompareOperator;
  readonly operand: string | number | boolean;
}

/** One op of a txn branch, built by `op`. */
export type TxnOp =
  | { readonly op: 'create'; readonly path: string; readonly value?: string; readonly sequential?: boolean; readonly lease?: number; readonly parents?: boolean }
  | { readonly op: 'put'; readonly path: string; readonly value?: string; readonly ifVersion?: number; readonly lease?: number }
  | { readonly op: 'delete'; readonly path: string; readonly ifVersion?: number; readonly recursive?: boolean }
  | { readonly op: 'get'; readonly path: string; readonly revision?: number };

export interface CreateOptions {
  /** Append a zero-padded, per-parent counter to the name (the answer has the created path). */
  readonly sequential?: boolean;
  /** An ephemeral node: it dies with this lease (a Session's `lease`). */
  readonly lease?: number;
  /** Create missing ancestors as empty nodes. */
  readonly parents?: boolean;
}

export interface PutOptions {
  /** Compare-and-set: only if the node's version is this (−1: only if it does not exist). */
  readonly ifVersion?: number;
  readonly lease?: number;
}

export interface DeleteOptions {
  readonly ifVersion?: number;
  /** Delete the node's descendants too (up to the member's --max-write-nodes). */
  readonly recursive?: boolean;
}

const defined = <T extends Record<string, unknown>>(fields: T): T => {
  const out: Record<string, unknown> = {};
  for (const key in fields) if (fields[key] !== undefined) out[key] = fields[key];
  return out as T;
};

/** Compares for `txn().if(...)`. */
export const cmp = {
  value: (path: string, operator: CompareOperator, value: Value): Compare => ({ path, target: 'value', operator, operand: encodeValue(value)! }),
  version: (path: string, operator: CompareOperator, version: number): Compare => ({ path, target: 'version', operator, operand: version }),
  createRevision: (path: string, operator: CompareOperator, revision: number): Compare => ({ path, target: 'createRevision', operator, operand: revision }),
  modRevision: (path: string, operator: CompareOperator, revision: number): Compare => ({ path, target: 'modRevision', operator, operand: revision }),
  /** The node exists (or, with `false`, does not). */
  exists: (path: string, exists = true): Compare => ({ path, target: 'exists', operator: '=', operand: exists }),
};

/** Ops for `txn().do(...)` and `.else(...)`. */
export const op = {
  create: (path: string, value?: Value, options: CreateOptions = {}): TxnOp => defined({ op: 'create' as const, path, value: encodeValue(value), ...options }),
  put: (path: string, value: Value, options: PutOptions = {}): TxnOp => defined({ op: 'put' as const, path, value: encodeValue(value), ...options }),
  delete: (path: string, options: DeleteOptions = {}): TxnOp => defined({ op: 'delete' as const, path, ...options }),
  get: (path: string, options: { readonly revision?: number } = {}): TxnOp => defined({ op: 'get' as const, path, ...options }),
};

/** A txn being built; `commit` sends it (exactly once, through the client's session). */
export class TxnBuilder<R> {
  private readonly compares: Compare[] = [];
  private readonly success: TxnOp[] = [];
  private readonly failure: TxnOp[] = [];

  constructor(private readonly send: (frame: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number) => Promise<R>) {}

  if(...compares: Compare[]): this {
    this.compares.push(...compares);
    return this;
  }

  /** The ops applied when every compare holds. */
  do(...ops: TxnOp[]): this {
    this.success.push(...ops);
    return this;
  }

  /** The ops applied when a compare fails. */
  else(...ops: TxnOp[]): this {
    this.failure.push(...ops);
    return this;
  }

  /** The txn's wire frame (without the stamp the client adds). */
  frame(): Record<string, unknown> {
    return { type: 'txn', compare: this.compares, success: this.success, failure: this.failure };
  }

  commit(call: { readonly signal?: AbortSignal; readonly timeoutMs?: number } = {}): Promise<R> {
    return this.send(this.frame(), call.signal, call.timeoutMs);
  }
}
