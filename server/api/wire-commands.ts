/**
 * The shapes between the wire and the state machine for namespace requests: a txn frame as a
 * command (values from base64), a write's answer without the values the client just sent, and an
 * answer's size estimated before it is built (for the turn's answer budget).
 *
 * Must never: let a value the client sent come back in a write's answer; change a frame's shape
 * beyond what the protocol schema already checked.
 */

import { jsonStringBytes, nodeWireBytes } from '../../shared/wire-size.js';
import type { StateResult } from '../state/state-machine.js';
import type { Compare, CompareOperator, CompareTarget, NodeView, TxnCommand, TxnOp } from '../state/types.js';

type Answer = Record<string, unknown>;

/**
 * A write's answer without the value the client just sent (the node's path and stat only), and
 * without the previous node unless asked for: an answer a fraction of the request's size.
 */
export function withoutValues(keepPrevNode: boolean): (result: StateResult) => StateResult | Answer {
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
export function txnWithoutValues(result: StateResult): StateResult | Answer {
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
export function answerBytes(answer: unknown): number {
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

export function pick(frame: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (frame[key] !== undefined) out[key] = frame[key];
  return out;
}

/** A txn frame as the state machine takes it: its shape is the protocol schema's (checked on arrival); only values change form, base64 to bytes. */
export function txnFromWire(f: Record<string, unknown>, value: (text: unknown, what: string) => Uint8Array): TxnCommand {
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
