/**
 * Write coalescing (server/transport/coalesce.ts) on real Node streams: what one event and the
 * promise chains it released write to a socket leaves in one writev, urgent sockets leave first,
 * and every cork is undone exactly once.
 *
 * Must never: sleep; wait without a bound.
 */

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeCoalescer } from '../../../server/transport/coalesce.js';

/** A socket stand-in that logs each syscall's worth of writes: one entry per writev. */
function socket(name: string, log: [string, string[]][]): Writable {
  return new Writable({
    writev(chunks, callback) {
      log.push([name, chunks.map((c) => String(c.chunk))]);
      callback();
    },
    write(chunk, _encoding, callback) {
      log.push([name, [String(chunk)]]);
      callback();
    },
  });
}

/** Until every queued write reached the stand-ins (an immediate runs after ticks and microtasks). */
const drained = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('writeCoalescer', () => {
  it("sends a turn's message and the answer its promise chain built afterwards in one writev", async () => {
    const log: [string, string[]][] = [];
    const peer = socket('peer', log);
    const coalesce = writeCoalescer(peer);
    const send = (frame: string, urgent?: boolean): void => {
      coalesce(urgent);
      peer.write(frame);
    };
    // A leader's turn, run from the event loop as the update loop's are: the commit news goes
    // out, then the apply resolves a waiter whose answer is built a few promise hops later.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        send('commit');
        const applied = Promise.resolve('result');
        void applied
          .then((r) => `${r}!`)
          .then((r) => r.toUpperCase())
          .then((answer) => send(answer, true))
          .then(resolve);
      }),
    );
    await drained();
    expect(log).toEqual([['peer', ['commit', 'RESULT!']]]);
    expect(peer.writableCorked).toBe(0);
  });

  it('lets sockets carrying answers leave before those carrying only Raft traffic, each uncorked once', async () => {
    const log: [string, string[]][] = [];
    const follower = socket('follower', log);
    const otherFollower = socket('other', log);
    const client = socket('client', log);
    const toFollower = writeCoalescer(follower);
    const toOther = writeCoalescer(otherFollower);
    const toClient = writeCoalescer(client, true);
    toFollower();
    follower.write('append');
    toOther();
    otherFollower.write('append');
    toClient();
    client.write('answer');
    // The follower's channel now carries a forwarded write's answer: it is raised to urgent.
    toFollower(true);
    follower.write('fwd-ok');
    await drained();
    expect(log.map(([name]) => name)).toEqual(['client', 'follower', 'other']);
    expect(log.find(([name]) => name === 'follower')![1]).toEqual(['append', 'fwd-ok']);
    for (const s of [follower, otherFollower, client]) expect(s.writableCorked).toBe(0);
  });

  it('corks again after a flush: a later event gets a batch of its own', async () => {
    const log: [string, string[]][] = [];
    const peer = socket('peer', log);
    const coalesce = writeCoalescer(peer);
    coalesce();
    peer.write('first');
    await drained();
    coalesce();
    peer.write('second');
    coalesce();
    peer.write('third');
    await drained();
    expect(log).toEqual([
      ['peer', ['first']],
      ['peer', ['second', 'third']],
    ]);
    expect(peer.writableCorked).toBe(0);
  });
});
