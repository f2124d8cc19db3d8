/**
 * The answer budget per turn (server/api/turn-budget.ts): work runs at once while the turn has
 * room; once it is spent, waiting work runs in later turns, each owner's in its order, the owners
 * served in turn by bytes — so one owner's thousand waiting answers, big or small, do not hold
 * back another's.
 *
 * Must never: sleep to synchronise (it awaits event-loop turns).
 */

import { describe, expect, it } from 'vitest';
import { TurnBudget } from '../../../server/api/turn-budget.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TurnBudget', () => {
  it('runs work at once while the turn has room, and defers it to a later turn once spent', async () => {
    const budget = new TurnBudget(100);
    const ran: string[] = [];
    budget.whenRoom({}, () => ran.push('now'));
    expect(ran).toEqual(['now']);
    budget.charge(150);
    const owner = {};
    for (const n of [1, 2, 3]) budget.whenRoom(owner, () => ran.push(`later ${n}`));
    expect(ran).toEqual(['now']);
    await turn();
    expect(ran).toEqual(['now', 'later 1', 'later 2', 'later 3']); // one owner's work in its order
    budget.whenRoom({}, () => ran.push('new turn'));
    expect(ran.at(-1)).toBe('new turn');
  });

  it('serves waiting owners in turn by bytes: a flood of big answers does not hold a client of small ones to one a round', async () => {
    const KiB = 1024;
    const budget = new TurnBudget(256 * KiB);
    budget.charge(256 * KiB);
    const flood = {};
    const small = {};
    const ran: string[] = [];
    for (let i = 0; i < 100; i++) {
      budget.whenRoom(flood, () => {
        ran.push(`flood ${i}`);
        budget.charge(100 * KiB);
      });
    }
    for (let i = 0; i < 1_000; i++) {
      budget.whenRoom(small, () => {
        ran.push(`small ${i}`);
        budget.charge(200);
      });
    }
    await turn();
    // First visits: the flood's first answer (100 KiB, its credit overdrawn), then a quantum's
    // worth of the small client's (64 KiB / 200 B), then the flood's next while the turn lasts.
    const smallFirstTurn = ran.filter((r) => r.startsWith('small')).length;
    expect(ran.slice(0, 2)).toEqual(['flood 0', 'small 0']);
    expect(smallFirstTurn).toBeGreaterThanOrEqual(300);
    expect(ran.filter((r) => r.startsWith('flood')).length).toBeLessThanOrEqual(3);
    // Each owner's work in its own order, and everything is served in the end.
    for (let t = 0; t < 200 && budget.waitingOwners > 0; t++) await turn();
    expect(ran.filter((r) => r.startsWith('small'))).toEqual(Array.from({ length: 1_000 }, (_, i) => `small ${i}`));
    expect(ran.filter((r) => r.startsWith('flood'))).toEqual(Array.from({ length: 100 }, (_, i) => `flood ${i}`));
  });

  it('runs work an owner queues from its own work after that owner\'s older work', async () => {
    const budget = new TurnBudget(100);
    budget.charge(100);
    const owner = {};
    const ran: string[] = [];
    budget.whenRoom(owner, () => {
      ran.push('a');
      budget.charge(100); // the turn is spent again: what follows waits
      budget.whenRoom(owner, () => ran.push('c'));
    });
    budget.whenRoom(owner, () => ran.push('b'));
    for (let t = 0; t < 5 && budget.waitingOwners > 0; t++) await turn();
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(budget.waiting(owner)).toBe(0);
  });

  it('serve answers what the work returned, or rejects with what it threw, and a throw stops nothing else', async () => {
    const errors: unknown[] = [];
    const budget = new TurnBudget(10, (error) => errors.push(error));
    budget.charge(10);
    const a = budget.serve({}, () => 42);
    const b = budget.serve({}, () => {
      throw new Error('boom');
    });
    const ran: string[] = [];
    budget.whenRoom({}, () => {
      throw new Error('unwatched');
    });
    budget.whenRoom({}, () => ran.push('after'));
    await expect(a).resolves.toBe(42);
    await expect(b).rejects.toThrow('boom');
    await turn();
    expect(ran).toEqual(['after']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['unwatched']);
  });
});
