/**
 * fast-check generators of namespace commands over a small path universe (segments a, b, a-b
 * and the sequential-looking s0000000001, at most three deep), so that creates collide with
 * existing nodes, deletes meet children, compares meet nodes and sequential names meet nodes put
 * by hand. `a-b` is there because `-` sorts before `/` as a plain string: it must still come
 * after the whole `a` subtree. Shared by the property tests and the replay-determinism test.
 *
 * Revisions inside generated commands (compact, get in a txn) are templates, `{ back: n }`
 * (n below the revision when the command runs) or `{ at: n }` (absolute, often in the future),
 * resolved by `materialize` just before the command is applied, so a useful share of them land
 * on live history.
 *
 * Must never: generate a malformed compare or a malformed op inside a txn, or more than one
 * defect of shape in a command (see writeOpArbs: those answers depend on validation order, which
 * namespace.test.ts pins instead); use Math.random, or read a clock.
 */

import fc from 'fast-check';
import type { Compare, CreateOp, DeleteOp, LeaseId, NamespaceCommand, PutOp } from '../../../server/state/types.js';

/** The leases that exist for the generated commands; 3 does not (LEASE_NOT_FOUND). */
export const KNOWN_LEASES: readonly LeaseId[] = [1, 2];
export const leaseExists = (lease: LeaseId): boolean => KNOWN_LEASES.includes(lease);
export const ALL_LEASES: readonly LeaseId[] = [1, 2, 3];

/** A revision chosen when the command runs. */
export type RevisionChoice = { readonly back: number } | { readonly at: number };

export interface GenGet {
  readonly op: 'get';
  readonly path: string;
  readonly revision?: RevisionChoice;
}
export type GenTxnOp = CreateOp | PutOp | DeleteOp | GenGet;
export interface GenTxn {
  readonly op: 'txn';
  readonly compare: readonly Compare[];
  readonly success: readonly GenTxnOp[];
  readonly failure: readonly GenTxnOp[];
}
export interface GenCompact {
  readonly op: 'compact';
  readonly revision: RevisionChoice;
}
/** Not a namespace command: the lease table revoking a lease calls deleteLeaseNodes. */
export interface RevokeLease {
  readonly op: 'revokeLease';
  readonly lease: LeaseId;
}
export type GenCommand = CreateOp | PutOp | DeleteOp | GenTxn | GenCompact | RevokeLease;
export type Runnable = NamespaceCommand | RevokeLease;

const SEGMENTS = ['a', 'b', 'a-b'];

/** Every path of the universe proper (root, a / b / a-b up to three deep), for exhaustive reads. */
export const UNIVERSE: readonly string[] = (() => {
  const paths = ['/'];
  let level = [''];
  for (let depth = 1; depth <= 3; depth++) {
    level = level.flatMap((prefix) => SEGMENTS.map((segment) => `${prefix}/${segment}`));
    paths.push(...level);
  }
  return paths;
})();

const segmentArb = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...SEGMENTS) }, { weight: 1, arbitrary: fc.constant('s0000000001') });

/** Shallow paths are likelier, so that parents exist and the same paths come round again. */
const plainPathArb = fc
  .oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 3, arbitrary: fc.constant(2) }, { weight: 2, arbitrary: fc.constant(3) })
  .chain((depth) => fc.array(segmentArb, { minLength: depth, maxLength: depth }))
  .map((segments) => `/${segments.join('/')}`);

/** Valid paths only: the universe and the root. */
const validPathArb: fc.Arbitrary<string> = fc.oneof({ weight: 40, arbitrary: plainPathArb }, { weight: 1, arbitrary: fc.constant('/') });

/** Now and then, a path the rules refuse (also as a sequential base). */
const badPathArb: fc.Arbitrary<string> = fc.constantFrom('a', '', '/a//b', 'b/');

/** A sequential base: a parent and a name prefix, '' (digits only) or 's'. */
const sequentialBaseArb: fc.Arbitrary<string> = fc
  .tuple(fc.oneof({ weight: 1, arbitrary: fc.constant('/') }, { weight: 4, arbitrary: plainPathArb }), fc.constantFrom('', 's'))
  .map(([parent, prefix]) => (parent === '/' ? `/${prefix}` : `${parent}/${prefix}`));

/** Small values over a three-byte alphabet (so value compares can be equal), up to 3 bytes. */
const smallValueArb: fc.Arbitrary<Uint8Array> = fc.uint8Array({ minLength: 0, maxLength: 3, min: 0, max: 2 });

/** Values at and just over the 4-byte limit the property tests set. */
const edgeValueArb: fc.Arbitrary<Uint8Array> = fc.uint8Array({ minLength: 4, maxLength: 5, min: 0, max: 2 });

/** Values no larger than the 4-byte limit. */
const fittingValueArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 12, arbitrary: smallValueArb },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 4, maxLength: 4, min: 0, max: 2 }) },
);

export const valueArb: fc.Arbitrary<Uint8Array> = fc.oneof({ weight: 12, arbitrary: smallValueArb }, { weight: 2, arbitrary: edgeValueArb });

/** Leases 1 and 2 exist, 3 does not (LEASE_NOT_FOUND: a matter of state, not of shape). */
const existingOrNotLeaseArb: fc.Arbitrary<number | undefined> = fc.oneof(
  { weight: 12, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom(1, 2) },
  { weight: 1, arbitrary: fc.constant(3) },
);

const ifVersionArb: fc.Arbitrary<number | undefined> = fc.oneof({ weight: 10, arbitrary: fc.constant(undefined) }, { weight: 7, arbitrary: fc.constantFrom(-1, 0, 1, 2) });

/** An object with only the keys whose value is defined (absent, not `undefined`). */
function defined<T>(fields: Record<string, unknown>): T {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as T;
}

/**
 * Create, put and delete arbitraries. `withDefects`: a top-level command may carry one defect of
 * shape (a refused path, a value over the limit, ifVersion 0.5, lease 1.5) — at most one, so the
 * code it earns does not depend on the order the namespace checks fields in. Ops inside a txn are
 * always well-formed: whether a malformed op refuses the txn before or after its other ops run,
 * and in the branch not taken, is the namespace's validation order, which namespace.test.ts pins
 * (see "bad input"), not something to guess here.
 */
function writeOpArbs(withDefects: boolean) {
  type Defect = 'none' | 'path' | 'value' | 'ifVersion' | 'lease';
  const defectArb: fc.Arbitrary<Defect> = withDefects
    ? fc.oneof({ weight: 24, arbitrary: fc.constant('none' as const) }, { weight: 1, arbitrary: fc.constantFrom('path' as const, 'value' as const, 'ifVersion' as const, 'lease' as const) })
    : fc.constant('none' as const);
  const valueOfArb = withDefects ? valueArb : fittingValueArb;
  const create: fc.Arbitrary<CreateOp> = fc
    .tuple(
      fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      validPathArb,
      sequentialBaseArb,
      valueOfArb,
      existingOrNotLeaseArb,
      fc.boolean(),
      defectArb,
      badPathArb,
    )
    .map(([sequential, path, base, value, lease, parents, defect, badPath]) =>
      defined<CreateOp>({
        op: 'create',
        path: defect === 'path' ? badPath : sequential ? base : path,
        value,
        sequential: sequential || undefined,
        lease: defect === 'lease' ? 1.5 : lease,
        parents: parents || undefined,
      }),
    );
  const put: fc.Arbitrary<PutOp> = fc
    .tuple(validPathArb, valueOfArb, ifVersionArb, existingOrNotLeaseArb, defectArb, badPathArb)
    .map(([path, value, ifVersion, lease, defect, badPath]) =>
      defined<PutOp>({
        op: 'put',
        path: defect === 'path' ? badPath : path,
        value,
        ifVersion: defect === 'ifVersion' ? 0.5 : ifVersion,
        lease: defect === 'lease' ? 1.5 : lease,
      }),
    );
  const remove: fc.Arbitrary<DeleteOp> = fc
    .tuple(validPathArb, ifVersionArb, fc.boolean(), defectArb, badPathArb)
    .map(([path, ifVersion, recursive, defect, badPath]) =>
      defined<DeleteOp>({ op: 'delete', path: defect === 'path' ? badPath : path, ifVersion: defect === 'ifVersion' ? 0.5 : ifVersion, recursive: recursive || undefined }),
    );
  return { create, put, remove };
}

const topLevel = writeOpArbs(true);
const inTxn = writeOpArbs(false);
export const createArb = topLevel.create;
export const putArb = topLevel.put;
export const deleteArb = topLevel.remove;

const revisionChoiceArb: fc.Arbitrary<RevisionChoice> = fc.oneof(
  { weight: 4, arbitrary: fc.nat(6).map((back) => ({ back })) },
  { weight: 1, arbitrary: fc.nat(70).map((at) => ({ at })) },
);

const getArb: fc.Arbitrary<GenGet> = fc
  .tuple(validPathArb, fc.option(revisionChoiceArb, { nil: undefined, freq: 2 }))
  .map(([path, revision]) => defined<GenGet>({ op: 'get', path, revision }));

/** Well-formed compares only (see the header). */
export const compareArb: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({ path: validPathArb, target: fc.constant('exists' as const), operator: fc.constantFrom('=' as const, '!=' as const), operand: fc.boolean() }),
  fc.record({ path: validPathArb, target: fc.constant('value' as const), operator: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const), operand: valueArb }),
  fc.record({
    path: validPathArb,
    target: fc.constantFrom('version' as const, 'createRevision' as const, 'modRevision' as const),
    operator: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const),
    operand: fc.integer({ min: -1, max: 12 }),
  }),
);

const txnOpArb: fc.Arbitrary<GenTxnOp> = fc.oneof(
  { weight: 3, arbitrary: inTxn.create },
  { weight: 3, arbitrary: inTxn.put },
  { weight: 2, arbitrary: inTxn.remove },
  { weight: 1, arbitrary: getArb },
);

export const txnArb: fc.Arbitrary<GenTxn> = fc.record({
  op: fc.constant('txn' as const),
  compare: fc.array(compareArb, { maxLength: 3 }),
  success: fc.array(txnOpArb, { maxLength: 4 }),
  failure: fc.array(txnOpArb, { maxLength: 4 }),
});

export const commandArb: fc.Arbitrary<GenCommand> = fc.oneof(
  { weight: 4, arbitrary: createArb },
  { weight: 4, arbitrary: putArb },
  { weight: 3, arbitrary: deleteArb },
  { weight: 3, arbitrary: txnArb },
  { weight: 1, arbitrary: revisionChoiceArb.map((revision): GenCompact => ({ op: 'compact', revision })) },
  { weight: 1, arbitrary: fc.constantFrom(...ALL_LEASES).map((lease): RevokeLease => ({ op: 'revokeLease', lease })) },
);

export function commandsArb(maxLength: number): fc.Arbitrary<GenCommand[]> {
  // size 'max': lengths spread over the whole range, not fast-check's small default.
  return fc.array(commandArb, { minLength: 1, maxLength, size: 'max' });
}

function resolve(choice: RevisionChoice, revisionNow: number): number {
  return 'back' in choice ? Math.max(0, revisionNow - choice.back) : choice.at;
}

/** The command to apply now, its revision templates resolved against `revisionNow`. */
export function materialize(command: GenCommand, revisionNow: number): Runnable {
  switch (command.op) {
    case 'compact':
      return { op: 'compact', revision: resolve(command.revision, revisionNow) };
    case 'txn': {
      const ops = (list: readonly GenTxnOp[]) =>
        list.map((op) => (op.op === 'get' && op.revision !== undefined ? { ...op, revision: resolve(op.revision, revisionNow) } : op)) as NamespaceCommand[];
      return { op: 'txn', compare: command.compare, success: ops(command.success), failure: ops(command.failure) } as NamespaceCommand;
    }
    default:
      return command;
  }
}

/** A short readable line for a failure message (values as byte lists). */
export function describeCommand(command: Runnable): string {
  return JSON.stringify(command, (_key, value: unknown) => (value instanceof Uint8Array ? `bytes[${[...value].join(',')}]` : value));
}
