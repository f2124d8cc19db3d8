/**
 * Fenced writes, shared by every recipe that hands out a fencing token (Lock and its kin,
 * Election): a txn that also compares "the holder's node exists with the token as its create
 * revision", whose else branch reads that node. The cluster checks the fence in the same revision
 * as the write, so a holder that lost its node is refused however late its write arrives:
 * refused whole (NO_NODE for the node; nothing applies, not even its else ops), or, when the
 * caller's own compares fail, `succeeded: false` with the node read as one extra result.
 *
 * Must never: report a fenced-out write as applied, or apply a write whose fence did not hold.
 */

import { cmp, op, TxnBuilder, WardenError, type CallOptions, type Compare, type TxnOp, type TxnResult, type Value, type WardenClient, type WriteResult } from '../public.js';

/** The node a fencing token stands for. */
export interface FencedNode {
  readonly path: string;
  /** The node's create revision. */
  readonly token: number;
}

/** Add the fence of `node` to `txn`. */
export function guardTxn<B extends TxnBuilder<unknown>>(txn: B, node: FencedNode): B {
  txn.if(cmp.createRevision(node.path, '=', node.token)).else(op.get(node.path));
  return txn;
}

export interface FenceOwner<N extends FencedNode> {
  readonly client: WardenClient;
  /** The node to fence by now (throws when there is none: nothing is held). */
  current(): N;
  /** The hold ended at the cluster: note it, and answer the error the caller gets. */
  fencedOut(node: N): WardenError;
}

/** Whether `node` still stands with its token (asked when a NO_NODE may be of one of the caller's own gets). */
async function stands(client: WardenClient, node: FencedNode): Promise<boolean> {
  return (await client.get(node.path))?.stat.createRevision === node.token;
}

/** A txn builder whose commit is fenced by `owner.current()`: `owner.fencedOut` (nothing applied) when the fence fails. */
export function fencedTxnBuilder<N extends FencedNode>(owner: FenceOwner<N>): TxnBuilder<TxnResult> {
  return new TxnBuilder<TxnResult>(async (frame, signal, timeoutMs) => {
    const node = owner.current();
    const txn = guardTxn(
      owner.client
        .txn()
        .if(...(frame['compare'] as Compare[]))
        .do(...(frame['success'] as TxnOp[]))
        .else(...(frame['failure'] as TxnOp[])),
      node,
    );
    let result: TxnResult;
    try {
      result = await txn.commit({ ...(signal === undefined ? {} : { signal }), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    } catch (error) {
      // NO_NODE may be of a get of the caller's own: only the held node's absence is the fence.
      if (error instanceof WardenError && error.code === 'NO_NODE' && !(await stands(owner.client, node))) throw owner.fencedOut(node);
      throw error;
    }
    if (result.succeeded) return result;
    const read = result.results[result.results.length - 1];
    if (read?.op !== 'get' || read.node.stat.createRevision !== node.token) throw owner.fencedOut(node);
    return { ...result, results: result.results.slice(0, -1) };
  });
}

/** A put through a fenced txn builder. */
export async function fencedPutWith(builder: TxnBuilder<TxnResult>, path: string, value: Value, call: CallOptions = {}): Promise<WriteResult> {
  const result = await builder.do(op.put(path, value)).commit(call);
  const put = result.results[0];
  if (put?.op !== 'put') throw new WardenError('UNAVAILABLE', `a fenced put of ${path} answered no put result`);
  return { revision: result.revision, path: put.path, stat: put.stat };
}
