/**
 * The client's watch bookkeeping on a fake clock against scripted members: resuming from the
 * revision after the last one received whole, joining fragments, following the member's
 * cancels, and pausing a reader that falls behind — every revision delivered once, none skipped.
 */

import { describe, expect, it } from 'vitest';
import { WardenClient } from '../../client/client.js';
import { HIGH_WATER, LOW_WATER, type WatchEvent } from '../../client/watch.js';
import { WardenError } from '../../shared/errors.js';
import { fakeCluster, FakeClock, FakeMember, flush, okBehaviour } from './fakes.js';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const event = (path: string, value: string) => ({ type: 'put', path, node: { path, value: b64(value), stat: {} } });

function setup(count = 2) {
  const clock = new FakeClock();
  const members = Array.from({ length: count }, (_, i) => new FakeMember(`ws://m${i + 1}`, okBehaviour()));
  const client = new WardenClient({ endpoints: members.map((m) => m.url), clock, random: () => 0, attemptTimeoutMs: 1_000 }, fakeCluster(members));
  return { clock, members, client };
}

const watchFrames = (member: FakeMember) => member.received.filter((f) => f['type'] === 'watch');
const lastWatchId = (member: FakeMember) => watchFrames(member).at(-1)!['watchId'] as number;

async function take<V>(iterator: AsyncIterator<WatchEvent<V>>, count: number, clock: FakeClock): Promise<WatchEvent<V>[]> {
  const out: WatchEvent<V>[] = [];
  for (let i = 0; i < count; i++) {
    const next = iterator.next();
    let result: IteratorResult<WatchEvent<V>> | null = null;
    void next.then((r) => (result = r));
    for (let t = 0; t < 100 && result === null; t++) await clock.advance(10);
    if (result === null) throw new Error(`event ${i} did not come`);
    if ((result as IteratorResult<WatchEvent<V>>).done) break;
    out.push((result as IteratorResult<WatchEvent<V>>).value);
  }
  return out;
}

describe('watch', () => {
  it('resumes on another member from the revision after the last received, delivering each revision once', async () => {
    const { clock, members, client } = setup();
    const watch = client.watch('/app', { scope: 'subtree' });
    const it = watch[Symbol.asyncIterator]();
    await clock.advance(10);
    const [m1, m2] = members as [FakeMember, FakeMember];
    const id1 = lastWatchId(m1);
    m1.push({ watch: id1, revision: 5, events: [event('/app/a', '5')] });
    m1.push({ watch: id1, revision: 6, events: [event('/app/a', '6'), event('/app/b', '6')] });
    expect((await take(it, 3, clock)).map((e) => `${e.revision}:${e.path}`)).toEqual(['5:/app/a', '6:/app/a', '6:/app/b']);
    m1.kill();
    await clock.advance(100);
    const resumed = watchFrames(m2).at(-1)!;
    expect(resumed['fromRevision']).toBe(7);
    const id2 = resumed['watchId'] as number;
    m2.push({ watch: id2, revision: 6, events: [event('/app/a', '6')] }); // an overlapping replay
    m2.push({ watch: id2, revision: 7, events: [event('/app/c', '7')] });
    expect((await take(it, 1, clock)).map((e) => `${e.revision}:${e.path}`)).toEqual(['7:/app/c']);
    await watch.cancel();
  });

  it('joins fragments of one revision, and asks again for a revision cut off mid-way', async () => {
    const { clock, members, client } = setup();
    const watch = client.watch('/', { scope: 'subtree', fromRevision: 3 });
    const it = watch[Symbol.asyncIterator]();
    await clock.advance(10);
    const [m1, m2] = members as [FakeMember, FakeMember];
    expect(watchFrames(m1).at(-1)!['fromRevision']).toBe(3);
    const id1 = lastWatchId(m1);
    m1.push({ watch: id1, revision: 3, events: [event('/x', '3')] });
    m1.push({ watch: id1, revision: 4, events: [event('/a', '4')], more: true });
    expect(await take(it, 1, clock)).toHaveLength(1);
    m1.kill(); // the rest of revision 4 never came
    await clock.advance(100);
    expect(watchFrames(m2).at(-1)!['fromRevision']).toBe(4);
    const id2 = lastWatchId(m2);
    m2.push({ watch: id2, revision: 4, events: [event('/a', '4')], more: true });
    m2.push({ watch: id2, revision: 4, events: [event('/b', '4')] });
    expect((await take(it, 2, clock)).map((e) => `${e.revision}:${e.path}`)).toEqual(['4:/a', '4:/b']);
    await watch.cancel();
  });

  it('subscribes again from resumeRevision after SLOW_CONSUMER, and ends COMPACTED with where history starts', async () => {
    const { clock, members, client } = setup(1);
    const watch = client.watch('/a');
    const it = watch[Symbol.asyncIterator]();
    await clock.advance(10);
    const m1 = members[0]!;
    m1.push({ watch: lastWatchId(m1), canceled: true, code: 'SLOW_CONSUMER', resumeRevision: 10 });
    await clock.advance(10);
    expect(watchFrames(m1).at(-1)!['fromRevision']).toBe(10);
    m1.push({ watch: lastWatchId(m1), canceled: true, code: 'COMPACTED', compactRevision: 42 });
    const next = it.next();
    next.catch(() => undefined);
    await clock.advance(10);
    const error = await next.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('COMPACTED');
    expect((error as WardenError).details.compactRevision).toBe(42);
  });

  it('pauses a reader that falls HIGH_WATER behind at the member, and resumes it from where it is once it drained', async () => {
    const { clock, members, client } = setup(1);
    const watch = client.watch('/a', { scope: 'subtree' });
    const it = watch[Symbol.asyncIterator]();
    await clock.advance(10);
    const m1 = members[0]!;
    const id = lastWatchId(m1);
    for (let r = 1; r <= HIGH_WATER + 5; r++) m1.push({ watch: id, revision: r, events: [event('/a', String(r))] });
    await flush();
    const cancels = m1.received.filter((f) => f['type'] === 'cancelWatch');
    expect(cancels.map((f) => f['watchId'])).toEqual([id]);
    // Pushes after the pause are not kept: memory stays bounded.
    const revisions: number[] = [];
    for (let i = 0; i < HIGH_WATER - LOW_WATER; i++) revisions.push((await it.next()).value!.revision);
    await clock.advance(10);
    const resumed = watchFrames(m1).at(-1)!;
    expect(resumed['watchId']).not.toBe(id);
    expect(resumed['fromRevision']).toBe(HIGH_WATER + 1);
    for (let i = 0; i < LOW_WATER; i++) revisions.push((await it.next()).value!.revision);
    expect(revisions).toEqual(Array.from({ length: HIGH_WATER }, (_, i) => i + 1));
    await watch.cancel();
  });

  it('leaves a frozen member even when the client only watches (a bookmark request finds it silent)', async () => {
    const { clock, members, client } = setup();
    const watch = client.watch('/a');
    await clock.advance(10);
    const [m1, m2] = members as [FakeMember, FakeMember];
    expect(watchFrames(m1)).toHaveLength(1);
    m1.frozen = true;
    await clock.advance(2_500); // attempt deadline 1 s: probed after 0.5 s of silence, left 1 s later
    expect(m1.received.some((f) => f['type'] === 'watchProgress')).toBe(true);
    expect(watchFrames(m2)).toHaveLength(1);
    await watch.cancel();
  });
});
