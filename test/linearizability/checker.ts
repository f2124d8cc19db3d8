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
 * - A cache of (set of linearized operations, register value) pairs already explored prunes
 *   every configuration the search has seen before. The set is a Uint32Array bitset hashed with
 *   Zobrist keys; the cache stores it as (count of leading full words, the nonzero words after
 *   them), which stays small on long histories, and a hash hit is confirmed by comparing that
 *   exact form, so pruning is exact.
 * The search keeps its own stack, so thousands of operations per key cannot overflow the call
 * stack.
 *
 * Time: events at equal times are ordered calls before returns, so an operation that returns
 * at the very time another is called counts as concurrent with it. That reads the history in
 * the most permissive way and can only allow more linearizations, never fewer.
 *
 * Unknown outcomes (`returnTime: null`): the operation may have taken effect at any moment after
 * its call, or never. Its return goes to +Infinity and the model accepts it in any state (a cas
 * applies iff the value matches); taking effect after everything else is the same as never.
 * A get of unknown outcome constrains nothing and changes nothing, so it is dropped up front.
 *
 * Must never: report a violation for a history that has a linearization (no heuristic pruning,
 * no sampling); run past its time budget silently (it answers 'unknown' and names the key it
 * was searching); accept a malformed history quietly (it throws, naming the operation).
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
  readonly valueNames: readonly RegisterValue[];
}

function compileKeyHistory(operations: readonly Operation[]): KeyModel {
  const n = operations.length;
  const kind = new Uint8Array(n);
  const value = new Int32Array(n);
  const expected = new Int32Array(n);
  const outcome = new Int8Array(n);
  const callTime = new Float64Array(n);
  const returnTime = new Float64Array(n);
  const valueIds = new Map<string, number>();
  const valueNames: RegisterValue[] = [null];
  const internValue = (registerValue: RegisterValue): number => {
    if (registerValue === null) return ABSENT;
    let id = valueIds.get(registerValue);
    if (id === undefined) {
      id = valueNames.length;
      valueIds.set(registerValue, id);
      valueNames.push(registerValue);
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

  return { operationCount: n, knownCount, kind, value, expected, outcome, callTime, returnTime, eventOrder, valueNames };
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
      /** The register value after that prefix. */
      readonly valueAfterPrefix: RegisterValue;
      /** The operation whose return came before it could be linearized after that prefix. */
      readonly stuckOperation: number;
      /** Pending calls that could have come next after that prefix, all refused. */
      readonly refusedCandidates: readonly number[];
    };

/**
 * A search configuration already reached. `closed` once the search has backtracked out of it,
 * i.e. it is known to have no completion; only closed ones may prune others.
 */
interface Configuration {
  readonly registerValue: number;
  readonly mustObserve: boolean;
  readonly fullKnownWords: number;
  /** (word index, word) pairs for every nonzero word of the known set past the full ones. */
  readonly sparseKnownWords: Uint32Array;
  readonly unknownSet: Uint32Array;
  closed: boolean;
}

const FULL_WORD = 0xffffffff;

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

  // Known operations linearized so far: a bitset, its Zobrist hash, and how many leading words
  // are full (known operations are numbered by call time, so the set is nearly a prefix).
  const knownSet = new Uint32Array(Math.ceil(k / 32));
  const zobrist = new Uint32Array(k);
  for (let i = 0; i < k; i++) zobrist[i] = mix32(Math.imul(i + 1, 0x9e3779b9));
  let knownHash = 0;
  let fullKnownWords = 0;
  let highestTouchedWord = -1;
  const toggleKnown = (operation: number): void => {
    const word = operation >>> 5;
    knownSet[word]! ^= 1 << (operation & 31);
    knownHash = (knownHash ^ zobrist[operation]!) >>> 0;
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

  const sparseScratch = new Uint32Array(2 * knownSet.length);
  const compactKnownSet = (): number => {
    let used = 0;
    for (let word = fullKnownWords; word <= highestTouchedWord; word++) {
      if (knownSet[word] !== 0) {
        sparseScratch[used++] = word;
        sparseScratch[used++] = knownSet[word]!;
      }
    }
    return used;
  };

  const reached = new Map<number, Configuration[]>();
  let reachedCount = 0;
  /**
   * Registers the configuration about to be entered, or returns null to prune it: a closed
   * configuration with the same known set, value and observation duty, whose unknown set is a
   * subset of this one, had every option this one has and found no completion.
   */
  const enter = (registerValue: number, mustObserve: boolean): Configuration | null => {
    const hash = (knownHash ^ mix32(registerValue * 2 + (mustObserve ? 1 : 0) + 0x6a09e667)) >>> 0;
    const used = compactKnownSet();
    let bucket = reached.get(hash);
    if (bucket === undefined) {
      bucket = [];
      reached.set(hash, bucket);
    } else {
      for (const seen of bucket) {
        if (
          seen.closed &&
          seen.registerValue === registerValue &&
          seen.mustObserve === mustObserve &&
          seen.fullKnownWords === fullKnownWords &&
          sameWords(seen.sparseKnownWords, sparseScratch, used) &&
          isSubset(seen.unknownSet, unknownSet)
        ) {
          return null;
        }
      }
    }
    const configuration: Configuration = {
      registerValue,
      mustObserve,
      fullKnownWords,
      sparseKnownWords: sparseScratch.slice(0, used),
      unknownSet: unknownSet.slice(),
      closed: false,
    };
    bucket.push(configuration);
    reachedCount++;
    return configuration;
  };

  const linearizedCalls = new Int32Array(n);
  const valueBefore = new Int32Array(n);
  const mustObserveBefore = new Uint8Array(n);
  const enteredAt: (Configuration | undefined)[] = new Array(n);
  let depth = 0;
  let registerValue = ABSENT;
  // True right after an unknown-outcome operation changed the value: see the header for why
  // the next operation may then not be a put.
  let mustObserve = false;
  let pendingKnown = k;

  /** Tries to linearize `operation` next; true if it was pushed. */
  const tryLinearize = (operation: number): boolean => {
    const known = operation < k;
    if (mustObserve && model.kind[operation] === PUT) return false;
    const valueAfter = applyOperation(model, operation, registerValue);
    if (valueAfter === REJECTED) return false;
    if (!known && valueAfter === registerValue) return false;
    if (known) toggleKnown(operation);
    else toggleUnknown(operation);
    const configuration = enter(valueAfter, !known);
    if (configuration === null) {
      if (known) toggleKnown(operation);
      else toggleUnknown(operation);
      return false;
    }
    linearizedCalls[depth] = operation;
    valueBefore[depth] = registerValue;
    mustObserveBefore[depth] = mustObserve ? 1 : 0;
    enteredAt[depth] = configuration;
    depth++;
    registerValue = valueAfter;
    mustObserve = !known;
    if (known) {
      lift(operation);
      pendingKnown--;
    }
    return true;
  };

  // The longest prefix is kept in its own buffer, copied from the stack lazily: entries below
  // stackAgreesBelow are known equal, so each save copies only what changed since the last one.
  let longestDepth = -1;
  const longestPrefix = new Int32Array(n);
  let stackAgreesBelow = 0;
  let valueAfterLongest = ABSENT;
  let stuckOperation = NIL;
  let refusedCandidates: number[] = [];

  /** The first return event in the list: the earliest-returning known operation still pending. */
  const firstReturn = (): number => {
    let entry = next[head]!;
    while (entry !== NIL && entry < k) entry = next[entry]!;
    if (entry === NIL) throw new Error('linearizability search invariant broken: no pending return');
    return entry;
  };

  // Candidates at each configuration: first the known calls ahead of the first pending return
  // (walking the list), then unknown-outcome operations called no later than that return.
  let entry = next[head]!;
  let unknownCursor = NIL;
  let steps = 0;
  while (pendingKnown > 0) {
    if (++steps % STEPS_PER_CLOCK_READ === 0 && performance.now() > deadline) {
      return { outcome: 'timeout', explored: reachedCount };
    }

    if (unknownCursor === NIL) {
      if (entry < k) {
        const call = entry;
        entry = tryLinearize(call) ? next[head]! : next[call]!;
        continue;
      }
      unknownCursor = k;
    }

    const boundary = entry;
    const latestCall = model.returnTime[boundary - k]!;
    let pushed = false;
    while (unknownCursor < n && model.callTime[unknownCursor]! <= latestCall) {
      const candidate = unknownCursor++;
      if (!isUnknownLinearized(candidate) && tryLinearize(candidate)) {
        pushed = true;
        break;
      }
    }
    if (pushed) {
      entry = next[head]!;
      unknownCursor = NIL;
      continue;
    }

    // Every candidate refused: the operation returning at `boundary` cannot be linearized in
    // time after this prefix.
    if (depth > longestDepth) {
      longestPrefix.set(linearizedCalls.subarray(stackAgreesBelow, depth), stackAgreesBelow);
      stackAgreesBelow = depth;
      longestDepth = depth;
      valueAfterLongest = registerValue;
      stuckOperation = boundary - k;
      refusedCandidates = [];
      for (let candidate = next[head]!; candidate !== boundary; candidate = next[candidate]!) refusedCandidates.push(candidate);
      for (let candidate = k; candidate < n && model.callTime[candidate]! <= latestCall; candidate++) {
        if (!isUnknownLinearized(candidate)) refusedCandidates.push(candidate);
      }
    }
    if (depth === 0) {
      return {
        outcome: 'violation',
        longestPrefix: Array.from(longestPrefix.subarray(0, longestDepth)),
        valueAfterPrefix: model.valueNames[valueAfterLongest]!,
        stuckOperation,
        refusedCandidates,
      };
    }

    depth--;
    if (depth < stackAgreesBelow) stackAgreesBelow = depth;
    const undone = linearizedCalls[depth]!;
    registerValue = valueBefore[depth]!;
    mustObserve = mustObserveBefore[depth] === 1;
    enteredAt[depth]!.closed = true;
    enteredAt[depth] = undefined;
    if (undone < k) {
      toggleKnown(undone);
      unlift(undone);
      pendingKnown++;
      entry = next[undone]!;
      unknownCursor = NIL;
    } else {
      toggleUnknown(undone);
      entry = firstReturn();
      unknownCursor = undone + 1;
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

/** murmur3's finalizer: spreads small integers over all 32 bits for the Zobrist keys. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function explainViolation(
  key: string,
  operations: readonly Operation[],
  search: Extract<KeySearch, { outcome: 'violation' }>,
): string {
  const { longestPrefix } = search;
  const lines = [
    `key ${quote(key)} is not linearizable: ${operations.length} operations on it, and no order of them ` +
      `respects both real time and the register's specification.`,
    `The longest linearizable prefix found has ${longestPrefix.length} operation(s); after it the register holds ` +
      `${describeValue(search.valueAfterPrefix)}.`,
    `This operation returned before any order let it take effect: ${describeOperation(operations[search.stuckOperation]!)}.`,
  ];
  const others = search.refusedCandidates.filter((candidate) => candidate !== search.stuckOperation);
  if (others.length > 0) {
    lines.push('Pending operations that could not come next either (the model refused them, or that order was already explored):');
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
