/**
 * Linearizability checker for register histories (put / get / cas on string keys).
 *
 * Algorithm: Wing & Gong's depth-first search for a linearization, with Lowe's improvements,
 * as Porcupine applies them:
 * - P-compositionality: a history of independent registers is linearizable iff each key's
 *   sub-history is, so every key is searched on its own.
 * - Call and return events sit in one doubly linked list sorted by time. The search walks the
 *   list from its head; a call whose model step accepts the recorded output is linearized and
 *   lifted out of the list (with its return), and the walk restarts from the head. Reaching a
 *   return event whose operation is still pending is a dead end: backtrack, put the last lifted
 *   operation back, and try the call after it.
 * - A cache of configurations (set of linearized operations, register value) already searched
 *   to the end prunes every later arrival at the same configuration. The set is a Uint32Array
 *   bitset, cached in an exact compact form (count of leading full words, then the nonzero
 *   words), which stays small on long histories because operations are numbered by call time.
 * The search keeps its own stack, so thousands of operations per key cannot overflow the call
 * stack.
 *
 * Time: events at equal times are ordered calls before returns, so an operation that returns
 * at the very time another is called counts as concurrent with it. That reads the history in
 * the most permissive way and can only allow more linearizations, never fewer.
 *
 * Unknown outcomes (`returnTime: null`): the operation may have taken effect at any moment after
 * its call, or never; its return is +Infinity and the model accepts any result (a cas applies
 * iff the value matches). A get of unknown outcome constrains nothing and is dropped up front.
 * The search is done once every operation with a known outcome is linearized: the rest can be
 * taken to have never happened.
 *
 * Plain WGL search blows up on unknown outcomes and wide concurrency, so the search adds
 * reductions that each keep it exact (each is argued where it is coded; the tests compare the
 * checker with a brute-force oracle on thousands of small histories):
 * - Forced reads: a pending get (or failed cas) that the current value satisfies is linearized
 *   at once, with no alternative tried: any linearization can be rearranged to put it first.
 * - Unread values merge: values no get returned and no cas expected are indistinguishable to
 *   every operation, so they share one value id and their configurations merge.
 * - Unknown outcomes only where they matter: an unknown operation is tried only after every
 *   known candidate, never when it would leave the value unchanged, and never directly before a
 *   put (a write overwritten unseen can be dropped from any linearization). Identical unknown
 *   operations are tried in call order only, since they are interchangeable once called.
 * - Dominance: a configuration is also pruned by a searched-out one with the same known set and
 *   value whose set of unknown operations used is a subset of its own: that one had every
 *   option this one has.
 *
 * Must never: report a violation for a history that has a linearization (every pruning above is
 * exact, none is a heuristic or a sample); run past its time budget silently (it answers
 * 'unknown' and names the key it was searching); accept a malformed history quietly (it throws,
 * naming the operation).
 */

import type { History, Operation, RegisterValue } from './history.js';

export type CheckResult =
  | { readonly verdict: 'ok' }
  | { readonly verdict: 'illegal'; readonly key: string; readonly explanation: string }
  | { readonly verdict: 'unknown'; readonly key: string; readonly explanation: string };

export interface CheckOptions {
  /** Budget for the whole history, all keys together. */
  readonly timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** How many search steps run between two clock reads; keeps overshoot of the budget tiny. */
const STEPS_PER_CLOCK_READ = 1024;
/** How many operations of the longest linearized prefix an explanation quotes. */
const PREFIX_TAIL_QUOTED = 6;

const PUT = 0;
const GET = 1;
const CAS = 2;

const OUTCOME_UNKNOWN = -1;
const OUTCOME_FAILED = 0;
const OUTCOME_OK = 1;

/** Value id of the absent register (null). */
const ABSENT = 0;
/** Value id shared by every value that no operation reads or expects. */
const UNREFERENCED = 1;
/** What a model step returns when the recorded output is impossible in the given state. */
const REJECTED = -1;
const NIL = -1;

export function checkHistory(history: History, options: CheckOptions = {}): CheckResult {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
  const startedAt = performance.now();
  const deadline = startedAt + timeoutMs;

  const operationsByKey = partitionByKey(history);
  const keys = [...operationsByKey.keys()].sort();
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    const key = keys[keyIndex]!;
    const operations = operationsByKey.get(key)!;
    const search = searchKey(compileKeyHistory(operations), deadline);
    if (search.outcome === 'linearizable') continue;
    if (search.outcome === 'timeout') {
      const elapsedMs = Math.round(performance.now() - startedAt);
      const unchecked = keys.slice(keyIndex + 1);
      return {
        verdict: 'unknown',
        key,
        explanation:
          `time budget of ${timeoutMs} ms ran out after ${elapsedMs} ms while searching key ${quote(key)} ` +
          `(${operations.length} operations, ${search.explored} configurations explored). ` +
          `Keys found linearizable before it: ${keyIndex}. ` +
          `Keys not checked: ${unchecked.length === 0 ? 'none' : unchecked.map(quote).join(', ')}.`,
      };
    }
    return { verdict: 'illegal', key, explanation: explainViolation(key, operations, search) };
  }
  return { verdict: 'ok' };
}

function partitionByKey(history: History): Map<string, Operation[]> {
  const operationsByKey = new Map<string, Operation[]>();
  history.forEach((operation, position) => {
    assertWellFormed(operation, position);
    if (operation.input.kind === 'get' && operation.output === null) return;
    const key = operation.input.key;
    let operations = operationsByKey.get(key);
    if (operations === undefined) {
      operations = [];
      operationsByKey.set(key, operations);
    }
    operations.push(operation);
  });
  // Numbering known operations by call time keeps every linearized set close to a prefix of the
  // numbering, which the explored-set cache stores compactly; unknown outcomes, which may stay
  // pending to the end, get the highest numbers so they do not hold that prefix back.
  for (const operations of operationsByKey.values()) {
    operations.sort(
      (a, b) => Number(a.returnTime === null) - Number(b.returnTime === null) || a.callTime - b.callTime,
    );
  }
  return operationsByKey;
}

function assertWellFormed(operation: Operation, position: number): void {
  const fail = (reason: string): never => {
    throw new Error(`malformed history: operation #${position} (client ${operation.clientId}) ${reason}`);
  };
  if (!Number.isFinite(operation.callTime)) fail(`has a non-finite callTime ${operation.callTime}`);
  if (operation.returnTime === null) {
    if (operation.output !== null) fail('has an output but no returnTime');
    return;
  }
  if (!Number.isFinite(operation.returnTime)) fail(`has a non-finite returnTime ${operation.returnTime}`);
  if (operation.returnTime < operation.callTime) {
    fail(`returns at ${operation.returnTime}, before its call at ${operation.callTime}`);
  }
  if (operation.output === null) fail('has a returnTime but no output');
  else if (operation.output.kind !== operation.input.kind) {
    fail(`is a ${operation.input.kind} with a ${operation.output.kind} output`);
  }
}

/** One key's operations in the flat, numeric form the search loop reads. */
interface KeyModel {
  readonly operationCount: number;
  /** Operations 0 .. knownCount-1 have a known outcome; the rest do not (puts and cas only). */
  readonly knownCount: number;
  readonly kind: Uint8Array;
  /** put/cas: the value written; get: the value read. */
  readonly value: Int32Array;
  /** cas only: the value expected. */
  readonly expected: Int32Array;
  readonly outcome: Int8Array;
  readonly callTime: Float64Array;
  readonly returnTime: Float64Array;
  /** Known operations' events in time order: entry i < knownCount is the call of operation i, knownCount + i its return. */
  readonly eventOrder: Int32Array;
  /**
   * Unknown-outcome operations grouped by identical effect (kind, value, expected): members of
   * a class, in call-time order, and each unknown operation's class (indexed from knownCount).
   */
  readonly unknownClassMembers: readonly Int32Array[];
  readonly unknownClassOf: Int32Array;
}

function compileKeyHistory(operations: readonly Operation[]): KeyModel {
  const n = operations.length;
  const kind = new Uint8Array(n);
  const value = new Int32Array(n);
  const expected = new Int32Array(n);
  const outcome = new Int8Array(n);
  const callTime = new Float64Array(n);
  const returnTime = new Float64Array(n);
  // Values no operation can tell apart share one id: a value that no get returned and no cas
  // expected is only ever "something else", so registers holding two such values behave the
  // same in every future. Merging them lets the cache merge configurations that differ only there.
  const referenced = new Set<RegisterValue>([null]);
  for (const { input, output } of operations) {
    if (input.kind === 'cas') referenced.add(input.expected);
    if (output !== null && output.kind === 'get') referenced.add(output.value);
  }
  const valueIds = new Map<RegisterValue, number>([[null, ABSENT]]);
  const internValue = (registerValue: RegisterValue): number => {
    if (!referenced.has(registerValue)) return UNREFERENCED;
    let id = valueIds.get(registerValue);
    if (id === undefined) {
      id = UNREFERENCED + valueIds.size;
      valueIds.set(registerValue, id);
    }
    return id;
  };

  let knownCount = 0;
  for (let i = 0; i < n; i++) {
    const { input, output } = operations[i]!;
    callTime[i] = operations[i]!.callTime;
    returnTime[i] = operations[i]!.returnTime ?? Number.POSITIVE_INFINITY;
    if (output !== null) knownCount++;
    switch (input.kind) {
      case 'put':
        kind[i] = PUT;
        value[i] = internValue(input.value);
        outcome[i] = output === null ? OUTCOME_UNKNOWN : OUTCOME_OK;
        break;
      case 'get':
        kind[i] = GET;
        if (output === null || output.kind !== 'get') {
          outcome[i] = OUTCOME_UNKNOWN;
        } else {
          value[i] = internValue(output.value);
          outcome[i] = OUTCOME_OK;
        }
        break;
      case 'cas':
        kind[i] = CAS;
        value[i] = internValue(input.value);
        expected[i] = internValue(input.expected);
        if (output === null || output.kind !== 'cas') outcome[i] = OUTCOME_UNKNOWN;
        else outcome[i] = output.ok ? OUTCOME_OK : OUTCOME_FAILED;
        break;
    }
  }

  const k = knownCount;
  const eventTime = (entry: number): number => (entry < k ? callTime[entry]! : returnTime[entry - k]!);
  const eventOrder = Int32Array.from({ length: 2 * k }, (_, entry) => entry);
  eventOrder.sort((a, b) => {
    const timeA = eventTime(a);
    const timeB = eventTime(b);
    if (timeA !== timeB) return timeA < timeB ? -1 : 1;
    // Equal times: calls first, so touching intervals count as overlapping (the permissive reading).
    const aIsCall = a < k;
    const bIsCall = b < k;
    if (aIsCall !== bIsCall) return aIsCall ? -1 : 1;
    return a - b;
  });

  const classIds = new Map<string, number>();
  const classMembers: number[][] = [];
  const unknownClassOf = new Int32Array(n - k);
  for (let operation = k; operation < n; operation++) {
    const effect = `${kind[operation]},${value[operation]},${expected[operation]}`;
    let classId = classIds.get(effect);
    if (classId === undefined) {
      classId = classMembers.length;
      classIds.set(effect, classId);
      classMembers.push([]);
    }
    classMembers[classId]!.push(operation);
    unknownClassOf[operation - k] = classId;
  }
  const unknownClassMembers = classMembers.map((members) => Int32Array.from(members));

  return {
    operationCount: n,
    knownCount,
    kind,
    value,
    expected,
    outcome,
    callTime,
    returnTime,
    eventOrder,
    unknownClassMembers,
    unknownClassOf,
  };
}

/** The register's sequential specification: the value after the operation, or REJECTED. */
function applyOperation(model: KeyModel, operation: number, registerValue: number): number {
  const outcome = model.outcome[operation]!;
  switch (model.kind[operation]) {
    case PUT:
      return model.value[operation]!;
    case GET:
      return outcome === OUTCOME_UNKNOWN || model.value[operation] === registerValue ? registerValue : REJECTED;
    default: {
      const matches = model.expected[operation] === registerValue;
      if (outcome === OUTCOME_UNKNOWN) return matches ? model.value[operation]! : registerValue;
      if (outcome === OUTCOME_OK) return matches ? model.value[operation]! : REJECTED;
      return matches ? REJECTED : registerValue;
    }
  }
}

type KeySearch =
  | { readonly outcome: 'linearizable' }
  | { readonly outcome: 'timeout'; readonly explored: number }
  | {
      readonly outcome: 'violation';
      /** The longest sequence of operations the search managed to linearize. */
      readonly longestPrefix: readonly number[];
      /** The operation whose return came before it could be linearized after that prefix. */
      readonly stuckOperation: number;
      /** Pending calls that could have come next after that prefix, all refused. */
      readonly refusedCandidates: readonly number[];
    };

const FULL_WORD = 0xffffffff;
const NO_UNKNOWN_SET = new Uint32Array(0);

function searchKey(model: KeyModel, deadline: number): KeySearch {
  const n = model.operationCount;
  const k = model.knownCount;
  const head = 2 * k;
  const next = new Int32Array(2 * k + 1);
  const prev = new Int32Array(2 * k + 1);
  let last = head;
  prev[head] = NIL;
  for (const entry of model.eventOrder) {
    next[last] = entry;
    prev[entry] = last;
    last = entry;
  }
  next[last] = NIL;

  const lift = (call: number): void => {
    const ret = call + k;
    next[prev[call]!] = next[call]!;
    if (next[call] !== NIL) prev[next[call]!] = prev[call]!;
    next[prev[ret]!] = next[ret]!;
    if (next[ret] !== NIL) prev[next[ret]!] = prev[ret]!;
  };
  // Exact inverse of lift, in reverse order, so lifted entries keep their own links meanwhile.
  const unlift = (call: number): void => {
    const ret = call + k;
    if (next[ret] !== NIL) prev[next[ret]!] = ret;
    next[prev[ret]!] = ret;
    if (next[call] !== NIL) prev[next[call]!] = call;
    next[prev[call]!] = call;
  };
  /** The first return event in the list: the earliest-returning known operation still pending. */
  const firstReturn = (): number => {
    let entry = next[head]!;
    while (entry !== NIL && entry < k) entry = next[entry]!;
    if (entry === NIL) throw new Error('linearizability search invariant broken: no pending return');
    return entry;
  };

  // Known operations linearized so far, as a bitset plus how many leading words are full:
  // known operations are numbered by call time, so the set is nearly a prefix.
  const knownSet = new Uint32Array(Math.ceil(k / 32));
  let fullKnownWords = 0;
  let highestTouchedWord = -1;
  const toggleKnown = (operation: number): void => {
    const word = operation >>> 5;
    knownSet[word]! ^= 1 << (operation & 31);
    if (word > highestTouchedWord) highestTouchedWord = word;
    if (word < fullKnownWords) fullKnownWords = word;
    else if (word === fullKnownWords) {
      while (fullKnownWords < knownSet.length && knownSet[fullKnownWords] === FULL_WORD) fullKnownWords++;
    }
  };
  // Unknown-outcome operations linearized so far, numbered from 0 in call-time order.
  const unknownSet = new Uint32Array(Math.ceil((n - k) / 32));
  const toggleUnknown = (operation: number): void => {
    unknownSet[(operation - k) >>> 5]! ^= 1 << ((operation - k) & 31);
  };
  const isUnknownLinearized = (operation: number): boolean =>
    (unknownSet[(operation - k) >>> 5]! & (1 << ((operation - k) & 31))) !== 0;
  // Within a class of identical unknown operations, only the earliest-called one not yet
  // linearized is ever tried: any later one is interchangeable with it from here on. So each
  // class is consumed in call order, and a count per class says how far.
  const consumedInClass = new Int32Array(model.unknownClassMembers.length);
  const isNextOfItsClass = (operation: number): boolean => {
    const classId = model.unknownClassOf[operation - k]!;
    return model.unknownClassMembers[classId]![consumedInClass[classId]!] === operation;
  };
  const consumeUnknown = (operation: number, consumed: boolean): void => {
    toggleUnknown(operation);
    consumedInClass[model.unknownClassOf[operation - k]!]! += consumed ? 1 : -1;
  };

  // Closed configurations: searched to the end without a completion. Keyed by the known set,
  // the value and the observation duty (an exact string form); each holds the unknown sets seen.
  const closed = new Map<string, Uint32Array[]>();
  let closedCount = 0;
  const configurationKey = (registerValue: number, mustObserve: boolean): string => {
    const parts = [registerValue, mustObserve ? 1 : 0, fullKnownWords];
    for (let word = fullKnownWords; word <= highestTouchedWord; word++) {
      if (knownSet[word] !== 0) parts.push(word, knownSet[word]!);
    }
    return parts.join(',');
  };
  /**
   * True if a closed configuration with the same key and an unknown set contained in the current
   * one exists: it had every option the current one has (unknown operations it has not used may
   * simply never happen), and found no completion. Only closed ones count: one still open is an
   * ancestor of the current configuration, still being searched.
   */
  const isDominated = (key: string): boolean => {
    const unknownSets = closed.get(key);
    if (unknownSets === undefined) return false;
    for (const seen of unknownSets) if (isSubset(seen, unknownSet)) return true;
    return false;
  };
  const close = (key: string): void => {
    let unknownSets = closed.get(key);
    if (unknownSets === undefined) {
      unknownSets = [];
      closed.set(key, unknownSets);
    }
    unknownSets.push(unknownSet.length === 0 ? NO_UNKNOWN_SET : unknownSet.slice());
    closedCount++;
  };

  const linearizedCalls = new Int32Array(n);
  const valueBefore = new Int32Array(n);
  const mustObserveBefore = new Uint8Array(n);
  const forcedAt = new Uint8Array(n);
  const keyAt: string[] = new Array<string>(n);
  let depth = 0;
  let registerValue = ABSENT;
  // True right after an unknown-outcome operation changed the value (see tryLinearize).
  let mustObserve = false;
  let pendingKnown = k;

  /** Linearizes `operation` next unless the model, a canonical-form rule or the cache refuses it. */
  const tryLinearize = (operation: number, forced: boolean): boolean => {
    const known = operation < k;
    // An unknown operation whose value is overwritten before anything reads it can be dropped
    // from any linearization (as if it never happened), so a put never directly follows one.
    if (mustObserve && model.kind[operation] === PUT) return false;
    const valueAfter = applyOperation(model, operation, registerValue);
    if (valueAfter === REJECTED) return false;
    // Likewise an unknown operation that changes nothing.
    if (!known && valueAfter === registerValue) return false;
    if (known) toggleKnown(operation);
    else consumeUnknown(operation, true);
    const key = configurationKey(valueAfter, !known);
    if (isDominated(key)) {
      if (known) toggleKnown(operation);
      else consumeUnknown(operation, false);
      return false;
    }
    linearizedCalls[depth] = operation;
    valueBefore[depth] = registerValue;
    mustObserveBefore[depth] = mustObserve ? 1 : 0;
    forcedAt[depth] = forced ? 1 : 0;
    keyAt[depth] = key;
    depth++;
    registerValue = valueAfter;
    mustObserve = !known;
    if (known) {
      lift(operation);
      pendingKnown--;
    }
    return true;
  };

  /**
   * A pending known read (get, or cas reported failed) that the current value satisfies. It is
   * the only move tried: moving a read to the front of any completion keeps that completion
   * valid (the read changes nothing, and it is already callable, so no real-time order breaks),
   * so if this move leads nowhere, no move does.
   */
  const satisfiedRead = (): number => {
    for (let entry = next[head]!; entry !== NIL && entry < k; entry = next[entry]!) {
      const outcome = model.outcome[entry];
      const readOnly = model.kind[entry] === GET || (model.kind[entry] === CAS && outcome === OUTCOME_FAILED);
      if (readOnly && applyOperation(model, entry, registerValue) !== REJECTED) return entry;
    }
    return NIL;
  };

  // The longest prefix is kept in its own buffer, copied from the stack lazily: entries below
  // stackAgreesBelow are known equal, so each save copies only what changed since the last one.
  let longestDepth = -1;
  const longestPrefix = new Int32Array(n);
  let stackAgreesBelow = 0;
  let stuckOperation = NIL;
  let refusedCandidates: number[] = [];
  const recordDeadEnd = (): void => {
    if (depth <= longestDepth) return;
    longestPrefix.set(linearizedCalls.subarray(stackAgreesBelow, depth), stackAgreesBelow);
    stackAgreesBelow = depth;
    longestDepth = depth;
    const boundary = firstReturn();
    stuckOperation = boundary - k;
    refusedCandidates = [];
    for (let candidate = next[head]!; candidate !== boundary; candidate = next[candidate]!) refusedCandidates.push(candidate);
    const latestCall = model.returnTime[stuckOperation]!;
    for (let candidate = k; candidate < n && model.callTime[candidate]! <= latestCall; candidate++) {
      if (!isUnknownLinearized(candidate)) refusedCandidates.push(candidate);
    }
  };

  // At each configuration: a satisfied pending read, if any, is the only move tried (forced).
  // Otherwise the candidates are the known calls ahead of the first pending return (walking
  // the list), then the unknown-outcome operations called no later than that return.
  let entry = next[head]!;
  let unknownCursor = NIL;
  let freshConfiguration = true;
  let steps = 0;
  while (pendingKnown > 0) {
    if (++steps % STEPS_PER_CLOCK_READ === 0 && performance.now() > deadline) {
      return { outcome: 'timeout', explored: closedCount };
    }

    let deadEnd = false;
    if (freshConfiguration) {
      freshConfiguration = false;
      const read = satisfiedRead();
      if (read !== NIL) {
        if (tryLinearize(read, true)) {
          freshConfiguration = true;
          entry = next[head]!;
          continue;
        }
        deadEnd = true;
      }
    }

    if (!deadEnd) {
      if (unknownCursor === NIL) {
        if (entry < k) {
          const call = entry;
          if (tryLinearize(call, false)) {
            freshConfiguration = true;
            entry = next[head]!;
          } else {
            entry = next[call]!;
          }
          continue;
        }
        unknownCursor = k;
      }
      const latestCall = model.returnTime[entry - k]!;
      let pushed = false;
      while (unknownCursor < n && model.callTime[unknownCursor]! <= latestCall) {
        const candidate = unknownCursor++;
        if (isNextOfItsClass(candidate) && tryLinearize(candidate, false)) {
          pushed = true;
          break;
        }
      }
      if (pushed) {
        freshConfiguration = true;
        entry = next[head]!;
        unknownCursor = NIL;
        continue;
      }
    }

    // No move left here: the pending operation returning first cannot take effect in time
    // after this prefix. Back out; a forced move's parent has no other move worth trying.
    recordDeadEnd();
    for (;;) {
      if (depth === 0) {
        return {
          outcome: 'violation',
          longestPrefix: Array.from(longestPrefix.subarray(0, longestDepth)),
          stuckOperation,
          refusedCandidates,
        };
      }
      depth--;
      if (depth < stackAgreesBelow) stackAgreesBelow = depth;
      close(keyAt[depth]!);
      const undone = linearizedCalls[depth]!;
      registerValue = valueBefore[depth]!;
      mustObserve = mustObserveBefore[depth] === 1;
      if (undone < k) {
        toggleKnown(undone);
        unlift(undone);
        pendingKnown++;
        entry = next[undone]!;
        unknownCursor = NIL;
      } else {
        consumeUnknown(undone, false);
        entry = firstReturn();
        unknownCursor = undone + 1;
      }
      if (forcedAt[depth] === 0) break;
    }
  }
  return { outcome: 'linearizable' };
}

function sameWords(stored: Uint32Array, scratch: Uint32Array, used: number): boolean {
  if (stored.length !== used) return false;
  for (let i = 0; i < used; i++) if (stored[i] !== scratch[i]) return false;
  return true;
}

function isSubset(smaller: Uint32Array, larger: Uint32Array): boolean {
  for (let i = 0; i < smaller.length; i++) if ((smaller[i]! & ~larger[i]!) !== 0) return false;
  return true;
}

function explainViolation(
  key: string,
  operations: readonly Operation[],
  search: Extract<KeySearch, { outcome: 'violation' }>,
): string {
  const { longestPrefix } = search;
  // The search merges values nobody reads, so the value is recomputed from the prefix itself.
  let valueAfterPrefix: RegisterValue = null;
  for (const position of longestPrefix) {
    const { input } = operations[position]!;
    if (input.kind === 'put') valueAfterPrefix = input.value;
    else if (input.kind === 'cas' && input.expected === valueAfterPrefix) valueAfterPrefix = input.value;
  }
  const lines = [
    `key ${quote(key)} is not linearizable: ${operations.length} operations on it, and no order of them ` +
      `respects both real time and the register's specification.`,
    `The longest linearizable prefix found has ${longestPrefix.length} operation(s); after it the register holds ` +
      `${describeValue(valueAfterPrefix)}.`,
    `This operation returned before any order let it take effect: ${describeOperation(operations[search.stuckOperation]!)}.`,
  ];
  const others = search.refusedCandidates.filter((candidate) => candidate !== search.stuckOperation);
  if (others.length > 0) {
    lines.push('Pending operations that could not come next either (refused by the register, or that order was already explored):');
    for (const candidate of others.slice(0, PREFIX_TAIL_QUOTED)) lines.push(`  ${describeOperation(operations[candidate]!)}`);
    if (others.length > PREFIX_TAIL_QUOTED) lines.push(`  ... and ${others.length - PREFIX_TAIL_QUOTED} more`);
  }
  if (longestPrefix.length > 0) {
    const tail = longestPrefix.slice(-PREFIX_TAIL_QUOTED);
    lines.push(
      longestPrefix.length > tail.length
        ? `Last ${tail.length} operations of that prefix, in linearization order:`
        : 'That prefix, in linearization order:',
    );
    for (const operation of tail) lines.push(`  ${describeOperation(operations[operation]!)}`);
  }
  return lines.join('\n');
}

export function describeOperation(operation: Operation): string {
  const { input, output } = operation;
  let request: string;
  switch (input.kind) {
    case 'put':
      request = `put(${quote(input.key)}, ${describeValue(input.value)})`;
      break;
    case 'get':
      request = `get(${quote(input.key)})`;
      break;
    case 'cas':
      request = `cas(${quote(input.key)}, expected ${describeValue(input.expected)}, new ${describeValue(input.value)})`;
      break;
  }
  let result: string;
  if (output === null) result = 'outcome unknown';
  else if (output.kind === 'get') result = `returned ${describeValue(output.value)}`;
  else if (output.kind === 'cas') result = output.ok ? 'returned ok' : 'returned failed';
  else result = 'returned ok';
  const returned = operation.returnTime === null ? 'no return' : `return at ${operation.returnTime}`;
  return `client ${operation.clientId} ${request} ${result} (call at ${operation.callTime}, ${returned})`;
}

function describeValue(value: RegisterValue): string {
  return value === null ? 'null (absent)' : JSON.stringify(value);
}

function quote(key: string): string {
  return JSON.stringify(key);
}
