/**
 * The Request Waiting Lists: a proposal is answered only by its own (index, term); a refused
 * read fails alone; reads are released only once their confirmed index is applied.
 */

import { describe, expect, it } from 'vitest';
import { ProposalWaitingList, ReadWaitingList, RequestError } from '../../../server/node/waiting-list.js';

describe('ProposalWaitingList', () => {
  it('answers a proposal with the result of its own entry, and fails it when another term took the slot', async () => {
    const list = new ProposalWaitingList<string>();
    const ours = list.add(5, 2);
    const replaced = list.add(6, 2);
    list.applied(5, 2, 'applied', 'a');
    list.applied(6, 3, 'someone else', 'b');
    await expect(ours).resolves.toBe('applied');
    await expect(replaced).rejects.toMatchObject({ code: 'NOT_LEADER', leaderHint: 'b' });
    expect(list.size).toBe(0);
  });
});

describe('ReadWaitingList', () => {
  it('fails a refused read alone, and releases the others once their index is applied', async () => {
    const list = new ReadWaitingList();
    const refused = list.add('r1');
    const waiting = list.add('r2');
    list.fail('r1', new RequestError('UNAVAILABLE', 'no leader', null));
    await expect(refused).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    let released = false;
    void waiting.then(() => (released = true));
    list.readIndex('r2', 9);
    list.applied(8);
    await Promise.resolve();
    expect(released).toBe(false);
    list.applied(9);
    await waiting;
    expect(released).toBe(true);
  });
});

describe('ReadWaitingList deadlines', () => {
  it('fails a read whose read index never came once its deadline passes (a lost ReadIndex never hangs a read), and only such a read', async () => {
    const list = new ReadWaitingList();
    const lost = list.add('lost', 100);
    const confirmed = list.add('confirmed', 100);
    const later = list.add('later', 200);
    list.readIndex('confirmed', 5);
    list.failOverdue(99, () => new RequestError('UNAVAILABLE', 'no read index', null));
    list.failOverdue(100, () => new RequestError('UNAVAILABLE', 'no read index', null));
    await expect(lost).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    list.applied(5);
    await expect(confirmed).resolves.toBeUndefined();
    let settled = false;
    void later.then(() => (settled = true), () => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
  });
});
