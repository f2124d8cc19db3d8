/**
 * The whole-command check that runs before a command touches anything: shape, types, paths and
 * sizes of every part — both transaction branches and every compare, whichever would be taken —
 * so bad input answers INVALID_ARGUMENT (or TOO_LARGE) and changes nothing.
 *
 * Must never: throw, whatever it is given (BigInt, cycles, objects without a prototype, proxies
 * it can read); evaluate anything against the state (that is the namespace's job).
 */

import type { ErrorCode } from '../../shared/errors.js';
import { checkPath, checkSequentialPath } from '../../shared/paths.js';

export interface Problem {
  readonly code: ErrorCode;
  readonly message: string;
}

const TARGETS = new Set(['value', 'version', 'createRevision', 'modRevision', 'exists']);
const OPERATORS = new Set(['=', '!=', '<', '>']);
const TXN_OPS_MAX = 1024;
const COMPARES_MAX = 1024;

/** A short, safe description of any value for an error message. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `"${value.slice(0, 40)}…"` : `"${value}"`;
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
      return Array.isArray(value) ? 'an array' : 'an object';
  }
}

/** The first problem with `command`, or null if it is well formed. */
export function commandProblem(command: unknown, valueBytesMax: number): Problem | null {
  try {
    if (!isRecord(command)) return invalid(`a command must be an object, got ${describe(command)}`);
    switch (command['op']) {
      case 'create':
      case 'put':
      case 'delete':
        return opProblem(command, valueBytesMax, false);
      case 'txn':
        return txnProblem(command, valueBytesMax);
      case 'compact':
        return isRevision(command['revision']) ? null : invalid(`compact needs a non-negative integer revision, got ${describe(command['revision'])}`);
      default:
        return invalid(`unknown operation ${describe(command['op'])}`);
    }
  } catch {
    // A getter or proxy trap threw while we looked: that is malformed input too.
    return invalid('the command could not be read');
  }
}

function txnProblem(txn: Record<string, unknown>, valueBytesMax: number): Problem | null {
  const { compare, success, failure } = txn;
  if (!Array.isArray(compare) || !Array.isArray(success) || !Array.isArray(failure)) {
    return invalid('txn needs compare, success and failure lists');
  }
  if (compare.length > COMPARES_MAX || success.length > TXN_OPS_MAX || failure.length > TXN_OPS_MAX) {
    return { code: 'TOO_LARGE', message: `txn holds at most ${COMPARES_MAX} compares and ${TXN_OPS_MAX} ops per branch` };
  }
  for (let i = 0; i < compare.length; i++) {
    const problem = compareProblem(compare[i]);
    if (problem !== null) return { code: problem.code, message: `txn compare ${i}: ${problem.message}` };
  }
  for (const [branch, ops] of [['success', success], ['failure', failure]] as const) {
    for (let i = 0; i < ops.length; i++) {
      const op: unknown = ops[i];
      const problem = isRecord(op) ? opProblem(op, valueBytesMax, true) : invalid(`an op must be an object, got ${describe(op)}`);
      if (problem !== null) return { code: problem.code, message: `txn ${branch} op ${i}: ${problem.message}` };
    }
  }
  return null;
}

function compareProblem(compare: unknown): Problem | null {
  if (!isRecord(compare)) return invalid(`a compare must be an object, got ${describe(compare)}`);
  const { path, target, operator, operand } = compare;
  const pathProblem = pathProblemOf(path);
  if (pathProblem !== null) return pathProblem;
  if (typeof target !== 'string' || !TARGETS.has(target)) return invalid(`unknown compare target ${describe(target)}`);
  if (typeof operator !== 'string' || !OPERATORS.has(operator)) return invalid(`unknown compare operator ${describe(operator)}`);
  if (target === 'exists') {
    if (operator !== '=' && operator !== '!=') return invalid('an exists compare takes = or !=');
    return typeof operand === 'boolean' ? null : invalid(`an exists compare takes a boolean, got ${describe(operand)}`);
  }
  if (target === 'value') return operand instanceof Uint8Array ? null : invalid(`a value compare takes bytes, got ${describe(operand)}`);
  return Number.isInteger(operand) ? null : invalid(`a ${target} compare takes an integer, got ${describe(operand)}`);
}

function opProblem(op: Record<string, unknown>, valueBytesMax: number, inTxn: boolean): Problem | null {
  const kind = op['op'];
  if (kind === 'get' && inTxn) {
    return pathProblemOf(op['path']) ?? (op['revision'] === undefined || isRevision(op['revision']) ? null : invalid(`revision must be a non-negative integer, got ${describe(op['revision'])}`));
  }
  if (kind !== 'create' && kind !== 'put' && kind !== 'delete') return invalid(`unknown operation ${describe(kind)}`);
  const sequential = op['sequential'];
  if (kind === 'create' && sequential !== undefined && typeof sequential !== 'boolean') return invalid(`sequential must be a boolean, got ${describe(sequential)}`);
  const pathProblem = kind === 'create' && sequential === true ? sequentialProblemOf(op['path']) : pathProblemOf(op['path']);
  if (pathProblem !== null) return pathProblem;
  if (kind !== 'delete') {
    const value = op['value'];
    if (!(value instanceof Uint8Array)) return invalid(`value must be bytes, got ${describe(value)}`);
    if (value.byteLength > valueBytesMax) return { code: 'TOO_LARGE', message: `value is ${value.byteLength} bytes; the limit is ${valueBytesMax}` };
    const lease = op['lease'];
    if (lease !== undefined && lease !== null && !Number.isInteger(lease)) return invalid(`lease must be an integer id, got ${describe(lease)}`);
  }
  if (kind !== 'create' && op['ifVersion'] !== undefined && !Number.isInteger(op['ifVersion'])) return invalid(`ifVersion must be an integer, got ${describe(op['ifVersion'])}`);
  for (const flag of kind === 'create' ? ['parents'] : kind === 'delete' ? ['recursive'] : []) {
    if (op[flag] !== undefined && typeof op[flag] !== 'boolean') return invalid(`${flag} must be a boolean, got ${describe(op[flag])}`);
  }
  return null;
}

function pathProblemOf(path: unknown): Problem | null {
  const checked = checkPath(path);
  return checked.ok ? null : invalid(checked.error.message);
}

function sequentialProblemOf(path: unknown): Problem | null {
  const checked = checkSequentialPath(path, 0);
  return checked.ok ? null : invalid(checked.error.message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isRevision(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0;
}

function invalid(message: string): Problem {
  return { code: 'INVALID_ARGUMENT', message };
}
