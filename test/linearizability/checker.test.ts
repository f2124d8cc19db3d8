/**
 * The linearizability checker, pinned on hand-made register histories whose verdict is known,
 * on a brute-force oracle for many small random histories, and on a large generated history.
 *
 * Pattern: every illegal case is paired with a near-identical legal one, so a checker that
 * rejected (or accepted) everything would fail here.
 *
 * Must never: assert a speed figure (the benchmark owns that); the one time bound here is a
 * generous check that a budget is kept, safe on a slow, noisy machine.
 */

import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { describe, expect, it } from 'vitest';
import { checkHistory, type CheckResult } from './checker.js';
import { generateLinearizableHistory } from './generate.js';
import type { History, Operation, RegisterValue } from './history.js';

function put(clientId: number, key: string, value: string, callTime: number, returnTime: number | null): Operation {
  return {
    clientId,
    input: { kind: 'put', key, value },
    callTime,
    returnTime,
    output: returnTime === null ? null : { kind: 'put' },
  };
}

function get(clientId: number, key: string, value: RegisterValue, callTime: number, returnTime: number): Operation {
  return { clientId, input: { kind: 'get', key }, callTime, returnTime, output: { kind: 'get', value } };
}

function getUnknown(clientId: number, key: string, callTime: number): Operation {
  return { clientId, input: { kind: 'get', key }, callTime, returnTime: null, output: null };
}

function cas(
  clientId: number,
  key: string,
  expected: RegisterValue,
  value: string,
  ok: boolean | null,
  callTime: number,
  returnTime: number | null,
): Operation {
  return {
    clientId,
    input: { kind: 'cas', key, expected, value },
    callTime,
    returnTime: ok === null ? null : returnTime,
    output: ok === null ? null : { kind: 'cas', ok },
  };
}

function expectIllegal(result: CheckResult, key: string): string {
  expect(result.verdict).toBe('illegal');
  if (result.verdict !== 'illegal') throw new Error('unreachable');
  expect(result.key).toBe(key);
  return result.explanation;
}

describe('linearizable histories', () => {
  it('accepts the empty history', () => {
    expect(checkHistory([])).toEqual({ verdict: 'ok' });
  });

  it('accepts a sequential history, including a read of the absent key', () => {
    const history = [
      get(1, 'x', null, 0, 1),
      put(1, 'x', 'a', 2, 3),
      get(2, 'x', 'a', 4, 5),
      put(2, 'x', 'b', 6, 7),
      get(1, 'x', 'b', 8, 9),
    ];
    expect(checkHistory(history)).toEqual({ verdict: 'ok' });
  });

  it('accepts either order of overlapping writes', () => {
    const writes = [put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 1, 9)];
    expect(checkHistory([...writes, get(3, 'x', 'a', 11, 12), get(3, 'x', 'a', 13, 14)])).toEqual({ verdict: 'ok' });
    expect(checkHistory([...writes, get(3, 'x', 'b', 11, 12), get(3, 'x', 'b', 13, 14)])).toEqual({ verdict: 'ok' });
  });

  it('accepts reads during overlapping writes that see the old value, then either new one', () => {
    const history = [
      put(1, 'x', 'a', 0, 10),
      put(2, 'x', 'b', 0, 10),
      get(3, 'x', null, 1, 2),
      get(3, 'x', 'b', 3, 4),
      get(4, 'x', 'b', 3, 5),
      get(3, 'x', 'a', 6, 7),
      get(4, 'x', 'a', 11, 12),
    ];
    expect(checkHistory(history)).toEqual({ verdict: 'ok' });
  });

  it('treats an operation returning at the instant another is called as concurrent with it', () => {
    // The documented permissive reading of equal times: the put may take effect at 5, after the get.
    expect(checkHistory([put(1, 'x', 'a', 0, 5), get(2, 'x', null, 5, 6)])).toEqual({ verdict: 'ok' });
    expect(checkHistory([put(1, 'x', 'a', 0, 5), get(2, 'x', null, 6, 7)]).verdict).toBe('illegal');
  });

  it('accepts an unknown-outcome write that took effect, late or never', () => {
    const before = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2, null)];
    expect(checkHistory([...before, get(3, 'x', 'b', 5, 6)])).toEqual({ verdict: 'ok' });
    expect(checkHistory([...before, get(3, 'x', 'a', 5, 6)])).toEqual({ verdict: 'ok' });
    // Took effect long after the client gave up on it.
    expect(checkHistory([...before, get(3, 'x', 'a', 5, 6), get(3, 'x', 'b', 100, 101)])).toEqual({ verdict: 'ok' });
  });

  it('rejects a value from an unknown-outcome write read before that write was called', () => {
    const history = [put(1, 'x', 'a', 0, 1), get(3, 'x', 'b', 2, 3), put(2, 'x', 'b', 4, null)];
    expectIllegal(checkHistory(history), 'x');
  });

  it('accepts compare-and-set successes and failures that match the value', () => {
    const history = [
      cas(1, 'x', null, 'a', true, 0, 1),
      cas(2, 'x', null, 'b', false, 2, 3),
      cas(2, 'x', 'a', 'b', true, 4, 5),
      get(1, 'x', 'b', 6, 7),
      cas(1, 'x', 'a', 'c', false, 8, 9),
      get(2, 'x', 'b', 10, 11),
    ];
    expect(checkHistory(history)).toEqual({ verdict: 'ok' });
  });

  it('accepts an unknown-outcome compare-and-set whether or not it applied', () => {
    const before = [put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', null, 2, null)];
    expect(checkHistory([...before, get(1, 'x', 'b', 3, 4)])).toEqual({ verdict: 'ok' });
    expect(checkHistory([...before, get(1, 'x', 'a', 3, 4)])).toEqual({ verdict: 'ok' });
    // Its expectation never matched, so it could never have written 'b'.
    const mismatched = [put(1, 'x', 'a', 0, 1), cas(2, 'x', 'z', 'b', null, 2, null)];
    expectIllegal(checkHistory([...mismatched, get(1, 'x', 'b', 3, 4)]), 'x');
  });

  it('ignores reads whose outcome is unknown', () => {
    expect(checkHistory([put(1, 'x', 'a', 0, 1), getUnknown(2, 'x', 2), get(1, 'x', 'a', 3, 4)])).toEqual({
      verdict: 'ok',
    });
  });

  it('checks keys independently', () => {
    const history = [put(1, 'x', 'a', 0, 1), put(2, 'y', 'b', 0, 1), get(1, 'x', 'a', 2, 3), get(2, 'y', 'b', 2, 3)];
    expect(checkHistory(history)).toEqual({ verdict: 'ok' });
  });

  it('handles a long sequential key without recursion', () => {
    const history: Operation[] = [];
    for (let i = 0; i < 20_000; i++) {
      history.push(put(i % 4, 'x', `v${i}`, 4 * i, 4 * i + 1), get((i + 1) % 4, 'x', `v${i}`, 4 * i + 2, 4 * i + 3));
    }
    expect(checkHistory(history)).toEqual({ verdict: 'ok' });
  });
});

describe('histories that are not linearizable', () => {
  it('rejects a stale read after a completed write', () => {
    const history = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), get(2, 'x', 'a', 4, 5)];
    expectIllegal(checkHistory(history), 'x');
  });

  it('rejects a lost write: a completed put no later read sees', () => {
    const history = [put(1, 'x', 'a', 0, 1), get(2, 'x', null, 2, 3)];
    expectIllegal(checkHistory(history), 'x');
  });

  it('rejects a read of a value never written', () => {
    expectIllegal(checkHistory([put(1, 'x', 'a', 0, 1), get(2, 'x', 'ghost', 0, 3)]), 'x');
  });

  it('rejects two readers seeing concurrent writes in opposite orders', () => {
    const writes = [put(1, 'x', 'a', 0, 100), put(2, 'x', 'b', 0, 100)];
    const readerA = [get(3, 'x', 'a', 10, 11), get(3, 'x', 'b', 20, 21)];
    const readerB = [get(4, 'x', 'b', 10, 11), get(4, 'x', 'a', 20, 21)];
    expectIllegal(checkHistory([...writes, ...readerA, ...readerB]), 'x');
    // Either reader alone is fine.
    expect(checkHistory([...writes, ...readerA])).toEqual({ verdict: 'ok' });
    expect(checkHistory([...writes, ...readerB])).toEqual({ verdict: 'ok' });
  });

  it('rejects readers that, after both writes completed, disagree on the final value', () => {
    const writes = [put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 0, 10)];
    const readerA = [get(3, 'x', 'a', 11, 12), get(3, 'x', 'b', 13, 14)];
    expectIllegal(checkHistory([...writes, ...readerA]), 'x');
    expectIllegal(checkHistory([...writes, get(3, 'x', 'a', 11, 12), get(4, 'x', 'b', 13, 14)]), 'x');
  });

  it('rejects a compare-and-set reported ok when the value did not match', () => {
    expectIllegal(checkHistory([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'z', 'b', true, 2, 3)]), 'x');
    expect(checkHistory([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', true, 2, 3)])).toEqual({ verdict: 'ok' });
  });

  it('rejects a compare-and-set reported failed when the value matched', () => {
    expectIllegal(checkHistory([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', false, 2, 3)]), 'x');
    expect(checkHistory([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'z', 'b', false, 2, 3)])).toEqual({ verdict: 'ok' });
  });

  it('names the key that fails, not a healthy one', () => {
    const history = [
      put(1, 'healthy', 'a', 0, 1),
      get(2, 'healthy', 'a', 2, 3),
      put(1, 'broken', 'a', 0, 1),
      get(2, 'broken', null, 2, 3),
      put(1, 'z-healthy', 'a', 0, 1),
    ];
    expectIllegal(checkHistory(history), 'broken');
  });

  it('explains the failure: key, longest prefix, and the operation that could not be placed', () => {
    const history = [put(7, 'config/leader', 'n1', 0, 1), put(7, 'config/leader', 'n2', 2, 3), get(9, 'config/leader', 'n1', 4, 5)];
    const explanation = expectIllegal(checkHistory(history), 'config/leader');
    expect(explanation).toContain('"config/leader"');
    expect(explanation).toContain('longest linearizable prefix found has 2 operation(s)');
    expect(explanation).toContain('register holds "n2"');
    expect(explanation).toContain('client 9 get("config/leader") returned "n1" (call at 4, return at 5)');
  });
});

describe('limits and malformed input', () => {
  it("answers 'unknown', naming the key, when the time budget runs out", () => {
    // Thirty concurrent writes must all precede an impossible read: every subset of them is a
    // distinct configuration to rule out, 2^30 in all.
    const history: Operation[] = [];
    for (let i = 0; i < 30; i++) history.push(put(i, 'hard', `w${i}`, 0, 100));
    history.push(get(99, 'hard', 'never-written', 101, 102));
    history.push(put(1, 'easy', 'a', 0, 1));
    const startedAt = performance.now();
    const result = checkHistory(history, { timeoutMs: 200 });
    const elapsedMs = performance.now() - startedAt;
    expect(result.verdict).toBe('unknown');
    if (result.verdict !== 'unknown') throw new Error('unreachable');
    expect(result.key).toBe('hard');
    expect(result.explanation).toContain('time budget of 200 ms');
    expect(elapsedMs).toBeLessThan(10_000);
  });

  it('rules out an impossible read quickly even with many unknown-outcome writes pending', () => {
    // Which of the forty writes took effect, and in what order, cannot matter: none wrote the value read.
    const history: Operation[] = [];
    for (let i = 0; i < 40; i++) history.push(put(i, 'x', `w${i}`, 0, null));
    history.push(get(99, 'x', 'never-written', 1, 2));
    expectIllegal(checkHistory(history, { timeoutMs: 100_000 }), 'x');
  });

  it('throws on a malformed operation instead of judging it', () => {
    expect(() => checkHistory([put(1, 'x', 'a', 5, 4)])).toThrow(/operation #0/);
    const mixedUp: Operation = { clientId: 1, input: { kind: 'get', key: 'x' }, callTime: 0, returnTime: 1, output: { kind: 'put' } };
    expect(() => checkHistory([mixedUp])).toThrow(/get with a put output/);
    const halfKnown: Operation = { clientId: 1, input: { kind: 'put', key: 'x', value: 'a' }, callTime: 0, returnTime: 1, output: null };
    expect(() => checkHistory([halfKnown])).toThrow(/no output/);
  });
});

/**
 * Ground truth for small histories: try every subset of unknown-outcome operations (the rest
 * never happened) and every order of the chosen ones that respects real time, replaying each
 * against a register.
 */
function bruteForceLinearizable(history: History): boolean {
  const keys = new Set(history.map((operation) => operation.input.key));
  for (const key of keys) {
    const operations = history.filter((operation) => operation.input.key === key);
    if (!bruteForceKey(operations)) return false;
  }
  return true;
}

function bruteForceKey(operations: readonly Operation[]): boolean {
  const unknown = operations.map((operation, index) => (operation.returnTime === null ? index : -1)).filter((index) => index >= 0);
  for (let subset = 0; subset < 1 << unknown.length; subset++) {
    const chosen = operations.filter((operation, index) => {
      const position = unknown.indexOf(index);
      return position === -1 || (subset & (1 << position)) !== 0;
    });
    if (someOrderWorks(chosen, [], null)) return true;
  }
  return false;
}

function someOrderWorks(remaining: readonly Operation[], placed: readonly Operation[], value: RegisterValue): boolean {
  if (remaining.length === 0) return true;
  for (const candidate of remaining) {
    // Real time: nothing still to place may have returned strictly before this one was called.
    const mustComeFirst = remaining.some(
      (other) => other !== candidate && other.returnTime !== null && other.returnTime < candidate.callTime,
    );
    if (mustComeFirst) continue;
    const after = registerStep(candidate, value);
    if (after === undefined) continue;
    if (someOrderWorks(remaining.filter((other) => other !== candidate), [...placed, candidate], after)) return true;
  }
  return false;
}

function registerStep(operation: Operation, value: RegisterValue): RegisterValue | undefined {
  const { input, output } = operation;
  if (input.kind === 'put') return input.value;
  if (input.kind === 'get') return output === null || (output.kind === 'get' && output.value === value) ? value : undefined;
  const matches = input.expected === value;
  if (output === null) return matches ? input.value : value;
  if (output.kind !== 'cas') return undefined;
  if (output.ok) return matches ? input.value : undefined;
  return matches ? undefined : value;
}

describe('agreement with a brute-force oracle', () => {
  interface Shape {
    readonly seed: number;
    readonly rounds: number;
    readonly operationsMax: number;
    /** Chance in ten that an operation's outcome is unknown. */
    readonly unknownInTen: number;
    /** Values written; reads and cas expectations draw only from the first `referencedCount`. */
    readonly written: readonly string[];
    readonly referencedCount: number;
  }

  function compareOnRandomHistories(shape: Shape): { ok: number; illegal: number } {
    const rng = xoroshiro128plus(shape.seed);
    const draw = (from: number, toInclusive: number): number => uniformInt(rng, from, toInclusive);
    const referenced: RegisterValue[] = [null, ...shape.written.slice(0, shape.referencedCount)];
    const verdicts = { ok: 0, illegal: 0 };
    for (let round = 0; round < shape.rounds; round++) {
      const history: Operation[] = [];
      const operationCount = draw(1, shape.operationsMax);
      for (let i = 0; i < operationCount; i++) {
        const key = draw(0, 3) === 0 ? 'y' : 'x';
        const callTime = draw(0, 12);
        const returnTime = draw(0, 9) < shape.unknownInTen ? null : callTime + draw(0, 6);
        const written = shape.written[draw(0, shape.written.length - 1)]!;
        const observed = referenced[draw(0, referenced.length - 1)]!;
        const kindRoll = draw(0, 2);
        if (kindRoll === 0) history.push(put(i, key, written, callTime, returnTime));
        else if (kindRoll === 1) {
          history.push(returnTime === null ? getUnknown(i, key, callTime) : get(i, key, observed, callTime, returnTime));
        } else {
          const ok = returnTime === null ? null : draw(0, 1) === 1;
          history.push(cas(i, key, observed, written, ok, callTime, returnTime));
        }
      }
      const expected = bruteForceLinearizable(history) ? 'ok' : 'illegal';
      const actual = checkHistory(history).verdict;
      if (actual !== expected) {
        throw new Error(`round ${round}: checker says ${actual}, oracle says ${expected}\n${JSON.stringify(history, null, 1)}`);
      }
      verdicts[expected]++;
    }
    return verdicts;
  }

  it('gives the oracle verdict on 3,000 small random histories', () => {
    const verdicts = compareOnRandomHistories({
      seed: 20240611,
      rounds: 3000,
      operationsMax: 7,
      unknownInTen: 1,
      written: ['a', 'b', 'c'],
      referencedCount: 3,
    });
    // Both verdicts must be well represented, or the comparison proves little.
    expect(verdicts.ok).toBeGreaterThan(500);
    expect(verdicts.illegal).toBeGreaterThan(500);
  });

  it('gives the oracle verdict when many outcomes are unknown and some values are never read', () => {
    // Exercises the pruning that unknown outcomes and unread values allow.
    const verdicts = compareOnRandomHistories({
      seed: 77,
      rounds: 2000,
      operationsMax: 8,
      unknownInTen: 4,
      written: ['a', 'b', 'c', 'd', 'e'],
      referencedCount: 2,
    });
    expect(verdicts.ok).toBeGreaterThan(300);
    expect(verdicts.illegal).toBeGreaterThan(300);
  });
});

describe('a generated 10,000-operation history', () => {
  const history = generateLinearizableHistory({ seed: 7, operationCount: 10_000, keyCount: 10, clientCount: 8 });

  it('has real concurrency, some unknown outcomes, and one operation in flight per client', () => {
    expect(history).toHaveLength(10_000);
    const lastCallByClient = new Map<number, number>();
    for (const operation of history) {
      // Operations come out in issue order, and a client issues its next only after the last returned.
      expect(operation.callTime).toBeGreaterThan(lastCallByClient.get(operation.clientId) ?? -1);
      lastCallByClient.set(operation.clientId, operation.returnTime ?? operation.callTime);
    }
    expect(new Set(history.map((operation) => operation.input.key)).size).toBe(10);
    expect(new Set(history.map((operation) => operation.clientId)).size).toBe(8);
    expect(history.filter((operation) => operation.returnTime === null).length).toBeGreaterThan(20);
    // Count operations called while an earlier-called operation on the same key with a known
    // outcome was still in flight (about 4,500 for this seed).
    const byKey = new Map<string, Operation[]>();
    for (const operation of history) byKey.set(operation.input.key, [...(byKey.get(operation.input.key) ?? []), operation]);
    let overlapping = 0;
    for (const operations of byKey.values()) {
      const sorted = [...operations].sort((a, b) => a.callTime - b.callTime);
      let latestReturn = Number.NEGATIVE_INFINITY;
      for (const operation of sorted) {
        if (operation.callTime <= latestReturn) overlapping++;
        if (operation.returnTime !== null) latestReturn = Math.max(latestReturn, operation.returnTime);
      }
    }
    expect(overlapping).toBeGreaterThan(2_000);
  });

  it('is deterministic for a seed', () => {
    const again = generateLinearizableHistory({ seed: 7, operationCount: 10_000, keyCount: 10, clientCount: 8 });
    expect(again).toEqual(history);
    const other = generateLinearizableHistory({ seed: 8, operationCount: 10_000, keyCount: 10, clientCount: 8 });
    expect(other).not.toEqual(history);
  });

  it('checks as linearizable', () => {
    expect(checkHistory(history, { timeoutMs: 100_000 })).toEqual({ verdict: 'ok' });
  });

  it('checks as illegal, on the right key, once one read is corrupted', () => {
    const victim = history.findIndex((operation, index) => index >= 5_000 && operation.output?.kind === 'get');
    const corrupted = history.map((operation, index) =>
      index === victim ? { ...operation, output: { kind: 'get' as const, value: 'never-written' } } : operation,
    );
    const explanation = expectIllegal(checkHistory(corrupted, { timeoutMs: 100_000 }), history[victim]!.input.key);
    expect(explanation).toContain('"never-written"');
  });

  it('checks as illegal once one read returns a value overwritten long before it was called', () => {
    // The first value written to the key is stale by the end of the history, whatever the order.
    let lastRead = history.length - 1;
    while (history[lastRead]!.output?.kind !== 'get') lastRead--;
    const key = history[lastRead]!.input.key;
    const first = history.find((operation) => operation.input.key === key && operation.input.kind === 'put' && operation.output !== null)!;
    if (first.input.kind !== 'put') throw new Error('unreachable');
    const staleValue = first.input.value;
    const corrupted = history.map((operation, index) =>
      index === lastRead ? { ...operation, output: { kind: 'get' as const, value: staleValue } } : operation,
    );
    expectIllegal(checkHistory(corrupted, { timeoutMs: 100_000 }), key);
  });
});
