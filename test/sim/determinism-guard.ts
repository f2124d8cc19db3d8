/**
 * Keeps a simulation honest: while it runs, the ambient sources of nondeterminism (wall clock,
 * Math.random, timers) throw, so any code path that escapes the injected clock and randomness
 * fails loudly instead of making a seed unreplayable.
 *
 * Must never: leave the stubs installed after the run, even when the run throws.
 */

type Saved = { target: object; key: string; value: unknown };

/**
 * Run `run` with the ambient sources stubbed out. An async run must never yield to the event
 * loop (only to microtasks): the stubs stay in place until it settles, and nothing else in the
 * process runs meanwhile.
 */
export function withoutAmbientNondeterminism<T>(run: () => T): T {
  const saved: Saved[] = [];
  const forbid = (target: object, key: string, what: string): void => {
    saved.push({ target, key, value: (target as Record<string, unknown>)[key] });
    (target as Record<string, unknown>)[key] = () => {
      throw new Error(`determinism: ${what} was called inside the simulator; inject a clock, random source or scheduler instead`);
    };
  };
  forbid(Date, 'now', 'Date.now');
  forbid(Math, 'random', 'Math.random');
  forbid(globalThis, 'setTimeout', 'setTimeout');
  forbid(globalThis, 'setInterval', 'setInterval');
  forbid(globalThis, 'setImmediate', 'setImmediate');
  forbid(globalThis, 'queueMicrotask', 'queueMicrotask');
  forbid(performance, 'now', 'performance.now');
  const restore = (): void => {
    for (const { target, key, value } of saved.reverse()) (target as Record<string, unknown>)[key] = value;
  };
  let result: T;
  try {
    result = run();
  } catch (error) {
    restore();
    throw error;
  }
  if (!(result instanceof Promise)) {
    restore();
    return result;
  }
  return result.finally(restore) as T;
}
