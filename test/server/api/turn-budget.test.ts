/**
 * The answer budget per turn (server/api/turn-budget.ts): room at once while the turn has some;
 * once it is spent, waiters are woken at the next turn, oldest first.
 *
 * Must never: sleep to synchronise (it awaits event-loop turns).
 */

import { describe, expect, it } from 'vitest';
import { TurnBudget } from '../../../server/api/turn-budget.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TurnBudget', () => {
  it('defers work past a turn\'s budget to the next turn, in arrival order', async () => {
    const budget = new TurnBudget(100);
    expect(budget.room()).toBeNull();
    budget.charge(150);
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) => budget.room()!.then(() => order.push(n)));
    expect(order).toEqual([]);
    await turn();
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3]);
    expect(budget.room()).toBeNull(); // a new turn, a new budget
  });
});
