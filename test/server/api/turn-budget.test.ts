/**
 * The answer budget per turn (server/api/turn-budget.ts): work runs at once while the turn has
 * room; once it is spent, waiting work runs in later turns, each owner's in its order, the owners
 * served in turn — so one owner's thousand waiting answers do not hold back another's one.
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

  it('serves waiting owners in turn, one piece each per round, up to each turn\'s budget', async () => {
    const budget = new TurnBudget(100);
    budget.charge(100);
    const flood = {};
    const probe = {};
    const ran: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      budget.whenRoom(flood, () => {
        ran.push(`flood ${i}`);
        budget.charge(50); // two of the flood's answers fill a turn
      });
    }
    budget.whenRoom(probe, () => ran.push('probe'));
    await turn();
    // The probe queued after all 1,000 of the flood's, yet runs in the first turn that has room.
    expect(ran).toEqual(['flood 0', 'probe', 'flood 1']);
    await turn();
    expect(ran).toEqual(['flood 0', 'probe', 'flood 1', 'flood 2', 'flood 3']);
    expect(budget.waitingOwners).toBe(1);
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
