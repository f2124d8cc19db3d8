/**
 * Deterministic generator of register histories that are linearizable by construction, for
 * the checker's tests and benchmark.
 *
 * Pattern: simulate a real register. Each client has at most one operation in flight; its
 * interval [call, return] is laid out on a shared logical clock, and a linearization point is
 * drawn inside that interval. Replaying all operations in linearization-point order against a
 * single register yields outputs that a correct system could have produced. Some operations
 * lose their outcome (`returnTime: null`): half of those still take effect, possibly after the
 * client has given up on them, as a timed-out request does in a real cluster.
 *
 * Must never: use an unseeded source of randomness (the same options give the same history);
 * emit a history that is not linearizable.
 */

import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { History, Operation, RegisterInput, RegisterOutput, RegisterValue } from './history.js';

export interface GenerateOptions {
  readonly seed: number;
  readonly operationCount: number;
  readonly keyCount: number;
  readonly clientCount: number;
  /** Operations per thousand whose outcome the client never learns. */
  readonly unknownOutcomePerMille?: number;
  /** Longest time between a call and its return; longer means more overlap. */
  readonly latencyMax?: number;
  /** Longest pause a client takes between one return and its next call. */
  readonly thinkTimeMax?: number;
}

export const DEFAULT_UNKNOWN_OUTCOME_PER_MILLE = 10;
export const DEFAULT_LATENCY_MAX = 20;
export const DEFAULT_THINK_TIME_MAX = 3;
/** An operation that timed out may still take effect this many latency-spans after its call. */
const LATE_EFFECT_SPANS = 4;

interface PlannedOperation {
  readonly clientId: number;
  readonly key: string;
  readonly kind: 'put' | 'get' | 'cas';
  /** The value a put or cas writes; unique across the history so every read names its write. */
  readonly written: string;
  readonly callTime: number;
  readonly returnTime: number;
  readonly outcomeKnown: boolean;
  /** When the register applies it; null if it never does (only for unknown outcomes). */
  readonly effectTime: number | null;
}

export function keyName(keyIndex: number): string {
  return `key-${keyIndex}`;
}

export function generateLinearizableHistory(options: GenerateOptions): History {
  const {
    seed,
    operationCount,
    keyCount,
    clientCount,
    unknownOutcomePerMille = DEFAULT_UNKNOWN_OUTCOME_PER_MILLE,
    latencyMax = DEFAULT_LATENCY_MAX,
    thinkTimeMax = DEFAULT_THINK_TIME_MAX,
  } = options;
  if (keyCount < 1 || clientCount < 1 || latencyMax < 1 || thinkTimeMax < 0 || operationCount < 0) {
    throw new RangeError('generateLinearizableHistory: keyCount, clientCount and latencyMax must be at least 1, the rest non-negative');
  }
  const rng = xoroshiro128plus(seed);
  const draw = (from: number, toInclusive: number): number => uniformInt(rng, from, toInclusive);

  // Phase 1: lay out each client's sequence of intervals. The client whose clock is furthest
  // behind goes next, so all clients advance together and their operations overlap.
  const clientClock = new Array<number>(clientCount).fill(0);
  const planned: PlannedOperation[] = [];
  for (let index = 0; index < operationCount; index++) {
    let clientId = 0;
    for (let candidate = 1; candidate < clientCount; candidate++) {
      if (clientClock[candidate]! < clientClock[clientId]!) clientId = candidate;
    }
    const callTime = clientClock[clientId]! + draw(0, thinkTimeMax);
    const latency = draw(1, latencyMax);
    const returnTime = callTime + latency;
    // The next call is strictly after this return, so one client never overlaps itself.
    clientClock[clientId] = returnTime + 1;

    const kindRoll = draw(0, 99);
    const kind = kindRoll < 45 ? 'get' : kindRoll < 85 ? 'put' : 'cas';
    const outcomeKnown = draw(0, 999) >= unknownOutcomePerMille;
    let effectTime: number | null;
    if (outcomeKnown) effectTime = draw(callTime, returnTime);
    else if (draw(0, 1) === 0) effectTime = null;
    else effectTime = callTime + draw(0, latency * LATE_EFFECT_SPANS);

    planned.push({
      clientId,
      key: keyName(draw(0, keyCount - 1)),
      kind,
      written: `v${index}`,
      callTime,
      returnTime,
      outcomeKnown,
      effectTime,
    });
  }

  // Phase 2: apply in linearization-point order to one register per key; that order respects
  // real time because every point lies inside its operation's interval.
  const effectOrder = planned
    .map((operation, index) => ({ operation, index }))
    .filter(({ operation }) => operation.effectTime !== null)
    .sort((a, b) => a.operation.effectTime! - b.operation.effectTime! || a.index - b.index);

  const register = new Map<string, RegisterValue>();
  const writtenSoFar = new Map<string, string[]>();
  const inputs = new Array<RegisterInput | undefined>(operationCount);
  const outputs = new Array<RegisterOutput | undefined>(operationCount);
  for (const { operation, index } of effectOrder) {
    const current = register.get(operation.key) ?? null;
    const writtenOnKey = writtenSoFar.get(operation.key) ?? [];
    switch (operation.kind) {
      case 'put':
        inputs[index] = { kind: 'put', key: operation.key, value: operation.written };
        outputs[index] = { kind: 'put' };
        register.set(operation.key, operation.written);
        writtenOnKey.push(operation.written);
        break;
      case 'get':
        inputs[index] = { kind: 'get', key: operation.key };
        outputs[index] = { kind: 'get', value: current };
        break;
      case 'cas': {
        const expected = chooseExpected(draw, current, writtenOnKey);
        const ok = expected === current;
        inputs[index] = { kind: 'cas', key: operation.key, expected, value: operation.written };
        outputs[index] = { kind: 'cas', ok };
        if (ok) {
          register.set(operation.key, operation.written);
          writtenOnKey.push(operation.written);
        }
        break;
      }
    }
    writtenSoFar.set(operation.key, writtenOnKey);
  }

  return planned.map((operation, index): Operation => {
    const input = inputs[index] ?? inputNeverApplied(operation);
    if (!operation.outcomeKnown) {
      return { clientId: operation.clientId, input, callTime: operation.callTime, returnTime: null, output: null };
    }
    return {
      clientId: operation.clientId,
      input,
      callTime: operation.callTime,
      returnTime: operation.returnTime,
      output: outputs[index]!,
    };
  });
}

/** Half the time the value the register holds, so cas succeeds often; else an older value or null. */
function chooseExpected(
  draw: (from: number, toInclusive: number) => number,
  current: RegisterValue,
  writtenBefore: readonly string[],
): RegisterValue {
  const roll = draw(0, 3);
  if (roll <= 1) return current;
  if (roll === 2 && writtenBefore.length > 0) return writtenBefore[draw(0, writtenBefore.length - 1)]!;
  return null;
}

function inputNeverApplied(operation: PlannedOperation): RegisterInput {
  switch (operation.kind) {
    case 'put':
      return { kind: 'put', key: operation.key, value: operation.written };
    case 'get':
      return { kind: 'get', key: operation.key };
    case 'cas':
      // Never applied, so any expectation is consistent; null is as good as any.
      return { kind: 'cas', key: operation.key, expected: null, value: operation.written };
  }
}
