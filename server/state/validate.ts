/**
 * The whole-command check that runs before a command touches anything: shape, types, paths and
 * sizes of every part — both transaction branches and every compare, whichever would be taken —
 * so bad input answers INVALID_ARGUMENT (or TOO_LARGE) and changes nothing.
 *
 * Must never: throw, whatever it is given (BigInt, cycles, objects without a prototype, proxies
 * it can read); evaluate anything against the state (that is the namespace's job).
 */

import type { ErrorCode } from '../../shared/errors.js';
import { checkPath, checkSequentialPath, SEQUENCE_DIGITS } from '../../shared/paths.js';
import { TXN_OPS_CEILING } from '../../shared/protocol.js';

export interface Problem {
  readonly code: ErrorCode;
  readonly message: string;
  /** The size bound passed, when that is the problem (the member names its flag). */
  readonly limit?: SizeLimitName;
}

export type SizeLimitName = 'valueBytesMax' | 'pathBytesMax' | 'txnOpsMax';

/** The size bounds a command is checked against: the state machine's own, or a member's (lower) flags at its front door. */
export interface SizeLimits {
  readonly valueBytesMax: number;
  /** The largest value compare operand (the front door bounds it as a value; the state machine need not). */
  readonly operandBytesMax?: number;
  readonly pathBytesMax?: number;
  readonly txnOpsMax?: number;
}

const TARGETS = new Set(['value', 'version', 'createRevision', 'modRevision', 'exists']);
const OPERATORS = new Set(['=', '!=', '<', '>']);
const TXN_OPS_MAX = TXN_OPS_CEILING;
const COMPARES_MAX = TXN_OPS_CEILING;

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
export function commandProblem(command: unknown, limits: SizeLimits): Problem | null {
  try {
    if (!isRecord(command)) return invalid(`a command must be an object, got ${describe(command)}`);
    switch (command['op']) {
      case 'create':
      case 'put':
      case 'delete':
        return limitsProblem(command['limits']) ?? opProblem(command, limits, false);
      case 'txn':
        return limitsProblem(command['limits']) ?? txnProblem(command, limits);
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

/** Carried limits, if any, must be positive integers (they decide what every member refuses). */
function limitsProblem(limits: unknown): Problem | null {
  if (limits === undefined) return null;
  if (!isRecord(limits)) return invalid(`limits must be an object, got ${describe(limits)}`);
  for (const [name, value] of Object.entries(limits)) {
    if (name !== 'writeNodesMax' && name !== 'writePathBytesMax' && name !== 'answerBytesMax') return invalid(`unknown limit ${describe(name)}`);
    if (!Number.isSafeInteger(value) || (value as number) < 1) return invalid(`limit ${name} must be a positive integer, got ${describe(value)}`);
  }
  return null;
}

function txnProblem(txn: Record<string, unknown>, limits: SizeLimits): Problem | null {
  const { compare, success, failure } = txn;
  if (!Array.isArray(compare) || !Array.isArray(success) || !Array.isArray(failure)) {
    return invalid('txn needs compare, success and failure lists');
  }
  const opsMax = Math.min(limits.txnOpsMax ?? TXN_OPS_MAX, TXN_OPS_MAX);
  if (compare.length > Math.min(limits.txnOpsMax ?? COMPARES_MAX, COMPARES_MAX) || success.length > opsMax || failure.length > opsMax) {
    return { code: 'TOO_LARGE', message: `txn holds ${compare.length} compares, ${success.length} success and ${failure.length} failure ops; at most ${opsMax} of each`, limit: 'txnOpsMax' };
  }
  for (let i = 0; i < compare.length; i++) {
    const problem = compareProblem(compare[i], limits);
    if (problem !== null) return { ...problem, message: `txn compare ${i}: ${problem.message}` };
  }
  for (const [branch, ops] of [['success', success], ['failure', failure]] as const) {
    for (let i = 0; i < ops.length; i++) {
      const op: unknown = ops[i];
      const problem = isRecord(op) ? opProblem(op, limits, true) : invalid(`an op must be an object, got ${describe(op)}`);
      if (problem !== null) return { ...problem, message: `txn ${branch} op ${i}: ${problem.message}` };
    }
  }
  return null;
}

function compareProblem(compare: unknown, limits: SizeLimits): Problem | null {
  if (!isRecord(compare)) return invalid(`a compare must be an object, got ${describe(compare)}`);
  const { path, target, operator, operand } = compare;
  const pathProblem = pathProblemOf(path, limits);
  if (pathProblem !== null) return pathProblem;
  if (typeof target !== 'string' || !TARGETS.has(target)) return invalid(`unknown compare target ${describe(target)}`);
  if (typeof operator !== 'string' || !OPERATORS.has(operator)) return invalid(`unknown compare operator ${describe(operator)}`);
  if (target === 'exists') {
    if (operator !== '=' && operator !== '!=') return invalid('an exists compare takes = or !=');
    return typeof operand === 'boolean' ? null : invalid(`an exists compare takes a boolean, got ${describe(operand)}`);
  }
  if (target === 'value') {
    if (!(operand instanceof Uint8Array)) return invalid(`a value compare takes bytes, got ${describe(operand)}`);
    const max = limits.operandBytesMax ?? Number.POSITIVE_INFINITY;
    return operand.byteLength > max ? { code: 'TOO_LARGE', message: `compare operand is ${operand.byteLength} bytes; the limit is ${max}`, limit: 'valueBytesMax' } : null;
  }
  return Number.isInteger(operand) ? null : invalid(`a ${target} compare takes an integer, got ${describe(operand)}`);
}

function opProblem(op: Record<string, unknown>, limits: SizeLimits, inTxn: boolean): Problem | null {
  const kind = op['op'];
  if (kind === 'get' && inTxn) {
    return pathProblemOf(op['path'], limits) ?? (op['revision'] === undefined || isRevision(op['revision']) ? null : invalid(`revision must be a non-negative integer, got ${describe(op['revision'])}`));
  }
  if (kind !== 'create' && kind !== 'put' && kind !== 'delete') return invalid(`unknown operation ${describe(kind)}`);
  const sequential = op['sequential'];
  if (kind === 'create' && sequential !== undefined && typeof sequential !== 'boolean') return invalid(`sequential must be a boolean, got ${describe(sequential)}`);
  const pathProblem = kind === 'create' && sequential === true ? sequentialProblemOf(op['path'], limits) : pathProblemOf(op['path'], limits);
  if (pathProblem !== null) return pathProblem;
  if (kind !== 'delete') {
    const value = op['value'];
    if (!(value instanceof Uint8Array)) return invalid(`value must be bytes, got ${describe(value)}`);
    if (value.byteLength > limits.valueBytesMax) return { code: 'TOO_LARGE', message: `value is ${value.byteLength} bytes; the limit is ${limits.valueBytesMax}`, limit: 'valueBytesMax' };
    const lease = op['lease'];
    if (lease !== undefined && lease !== null && !Number.isInteger(lease)) return invalid(`lease must be an integer id, got ${describe(lease)}`);
  }
  if (kind !== 'create' && op['ifVersion'] !== undefined && !Number.isInteger(op['ifVersion'])) return invalid(`ifVersion must be an integer, got ${describe(op['ifVersion'])}`);
  for (const flag of kind === 'create' ? ['parents'] : kind === 'delete' ? ['recursive'] : []) {
    if (op[flag] !== undefined && typeof op[flag] !== 'boolean') return invalid(`${flag} must be a boolean, got ${describe(op[flag])}`);
  }
  return null;
}

/** A path's size is checked first (TOO_LARGE names the limit), then its shape. */
function pathProblemOf(path: unknown, limits: SizeLimits): Problem | null {
  if (typeof path === 'string') {
    const tooLong = pathBytesProblem(path, limits);
    if (tooLong !== null) return tooLong;
  }
  const checked = checkPath(path);
  return checked.ok ? null : invalid(checked.error.message);
}

/** A sequential base makes a path SEQUENCE_DIGITS longer: that path must fit the bound. */
function sequentialProblemOf(path: unknown, limits: SizeLimits): Problem | null {
  if (typeof path === 'string') {
    const tooLong = pathBytesProblem(`${path}${'0'.repeat(SEQUENCE_DIGITS)}`, limits);
    if (tooLong !== null) return tooLong;
  }
  const checked = checkSequentialPath(path, 0);
  return checked.ok ? null : invalid(checked.error.message);
}

function pathBytesProblem(path: string, limits: SizeLimits): Problem | null {
  const max = limits.pathBytesMax;
  if (max === undefined || path.length <= max / 3) return null; // 3 UTF-8 bytes per UTF-16 unit at most
  const bytes = utf8Length(path);
  return bytes > max ? { code: 'TOO_LARGE', message: `path of ${bytes} bytes; the limit is ${max}`, limit: 'pathBytesMax' } : null;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
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
