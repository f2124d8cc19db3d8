/**
 * The simulator's promise: one seed decides everything, so a failure replays exactly; and code
 * that escapes the injected world (wall clock, Math.random, timers) fails loudly.
 *
 * Must never: compare runs in a way that ignores the order of events.
 */

import { describe, expect, it } from 'vitest';
import { runSimulation } from './simulation.js';
import { withoutAmbientNondeterminism } from './determinism-guard.js';

describe('determinism', () => {
  it('replays a seed to the identical trace, history and figures', async () => {
    const a = await runSimulation({ seed: 7, steps: 5000, trace: true });
    const b = await runSimulation({ seed: 7, steps: 5000, trace: true });
    expect(a.trace.length).toBeGreaterThan(1000);
    expect(b.trace).toEqual(a.trace);
    expect(b.history).toEqual(a.history);
    expect({ ...b, trace: [], history: [] }).toEqual({ ...a, trace: [], history: [] });
  });

  it('different seeds take different paths', async () => {
    const a = await runSimulation({ seed: 1, steps: 2000, trace: true });
    const b = await runSimulation({ seed: 2, steps: 2000, trace: true });
    expect(b.trace).not.toEqual(a.trace);
  });

  it.each<[string, () => unknown]>([
    ['Date.now', () => Date.now()],
    ['Math.random', () => Math.random()],
    ['performance.now', () => performance.now()],
    ['setTimeout', () => setTimeout(() => undefined, 0)],
    ['setInterval', () => setInterval(() => undefined, 1000)],
    ['setImmediate', () => setImmediate(() => undefined)],
  ])('%s throws inside the simulator and works again after it', (name, leak) => {
    expect(() => withoutAmbientNondeterminism(leak)).toThrow(new RegExp(`determinism: ${name.replace('.', '\\.')}`));
    expect(() => {
      const handle = leak();
      if (name === 'setImmediate') clearImmediate(handle as NodeJS.Immediate);
      else if (name.startsWith('set')) clearTimeout(handle as NodeJS.Timeout);
    }).not.toThrow();
  });
});
