/**
 * The watch hub's bounds (server/watch/hub.ts): a replay of a long history is read and sent a
 * slice at a time across turns of the event loop, and only while the connection takes it (it
 * waits for the reader to drain, never cancelling it for the history's length); a revision too
 * big for one frame goes out as fragments marked `more`, live and replayed alike; watches per
 * connection and per member are bounded; subtree roots are found along the changed path
 * (PathTrie), however deep, whatever else is registered.
 *
 * Must never: sleep to synchronise (it awaits the hub's own turns, a bounded number of them);
 * read a real clock.
 */

import { describe, expect, it } from 'vitest';
import { Namespace } from '../../../server/state/namespace.js';
import type { NamespaceCommand } from '../../../server/state/types.js';
import { WatchHub, type WatchLimits, type WatchSink, type WatchSpec } from '../../../server/watch/hub.js';
import { PathTrie } from '../../../server/watch/path-trie.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Frame = Record<string, unknown>;

/** A connection that takes `room` frames, then is not writable until the test drains it. */
class ThrottledSink implements WatchSink {
  readonly frames: Frame[] = [];
  room = Number.POSITIVE_INFINITY;
  private resumes: (() => void)[] = [];
  refusals = 0;

  push(frame: string, force = false): boolean {
    if (!force && this.room <= 0) {
      this.refusals += 1;
      return false;
    }
    if (!force) this.room -= 1;
    this.frames.push(JSON.parse(frame) as Frame);
    return true;
  }

  writable(): boolean {
    return this.room > 0;
  }

  whenWritable(resume: () => void): void {
    this.resumes.push(resume);
  }

  /** The reader caught up: `room` more frames fit. */
  drain(room: number): void {
    this.room = room;
    const resumes = this.resumes;
    this.resumes = [];
    for (const resume of resumes) resume();
  }

  get waiting(): boolean {
    return this.resumes.length > 0;
  }

  revisions(): number[] {
    return this.frames.filter((f) => Array.isArray(f['events']) && f['more'] !== true).map((f) => f['revision'] as number);
  }
}

function harness(limits?: WatchLimits) {
  const namespace = new Namespace();
  const hub = new WatchHub(() => namespace, () => 0, limits);
  const apply = (command: NamespaceCommand): number => {
    const { result, events } = namespace.apply(command);
    if (!result.ok) throw new Error(`${command.op} refused: ${result.code}`);
    hub.publish(events);
    return result.revision;
  };
  return { namespace, hub, apply };
}

const spec = (path: string, scope: WatchSpec['scope'], extra: Partial<WatchSpec> = {}): WatchSpec => ({ path, scope, prevNode: false, noPut: false, noDelete: false, progressNotify: false, ...extra });
const put = (path: string, value: string | Uint8Array): NamespaceCommand => ({ op: 'put', path, value: typeof value === 'string' ? text(value) : value });

/** Await turns until `done`, at most `turns` of them. */
async function turnsUntil(done: () => boolean, turns: number): Promise<number> {
  for (let i = 0; i < turns; i++) {
    if (done()) return i;
    await turn();
  }
  if (!done()) throw new Error(`not done within ${turns} turns`);
  return turns;
}

describe('a replay of a long history', () => {
  it('is sent across several turns, never all in one, and delivers every revision once, in order', async () => {
    const { hub, apply } = harness();
    for (let i = 1; i <= 3_000; i++) apply(put(`/h/k${i % 50}`, `v${i}`));
    const sink = new ThrottledSink();
    expect(hub.watch(sink, 1, spec('/', 'subtree', { fromRevision: 1 }))).toEqual({ ok: true, revision: 3_000 });
    await turn();
    const afterOneTurn = sink.revisions().length;
    expect(afterOneTurn).toBeGreaterThan(0);
    expect(afterOneTurn).toBeLessThan(3_000);
    await turnsUntil(() => sink.revisions().length === 3_000, 200);
    expect(sink.revisions()).toEqual(Array.from({ length: 3_000 }, (_, i) => i + 1));
  });

  it('waits for a reader that does not keep up instead of cancelling it, and goes on (then live) once it drains', async () => {
    const { hub, apply } = harness();
    for (let i = 1; i <= 500; i++) apply(put('/w/k', `v${i}`));
    const sink = new ThrottledSink();
    sink.room = 40;
    hub.watch(sink, 1, spec('/w', 'subtree', { fromRevision: 1 }));
    await turnsUntil(() => sink.waiting, 20);
    expect(sink.revisions()).toHaveLength(40);
    // Writes while it waits: the replay reaches them from history, not twice.
    apply(put('/w/k', 'during'));
    for (let round = 0; round < 100 && sink.revisions().length < 501; round++) {
      sink.drain(40);
      await turnsUntil(() => sink.waiting || sink.revisions().length === 501, 20);
    }
    expect(sink.revisions()).toEqual(Array.from({ length: 501 }, (_, i) => i + 1));
    expect(sink.frames.some((f) => f['canceled'] === true)).toBe(false);
    expect(sink.refusals).toBe(0);
    // Caught up: live delivery from here on.
    sink.drain(10);
    apply(put('/w/k', 'live'));
    await turnsUntil(() => sink.revisions().length === 502, 5);
    expect(sink.revisions().at(-1)).toBe(502);
  });

  it('cancels COMPACTED at the first revision it could not deliver when history is compacted under a waiting replay', async () => {
    const { hub, apply } = harness();
    for (let i = 1; i <= 600; i++) apply(put('/c/k', `v${i}`));
    const sink = new ThrottledSink();
    sink.room = 300;
    hub.watch(sink, 1, spec('/c', 'node', { fromRevision: 1 }));
    hub.watch(sink, 2, spec('/c/k', 'node', { fromRevision: 1 }));
    await turnsUntil(() => sink.waiting, 20);
    // Past what the replay has read ahead (a slice at most beyond what it sent).
    apply({ op: 'compact', revision: 590 });
    sink.drain(1_000);
    await turnsUntil(() => sink.frames.some((f) => f['canceled'] === true), 20);
    const cancel = sink.frames.find((f) => f['canceled'] === true)!;
    expect(cancel).toMatchObject({ watch: 2, code: 'COMPACTED' });
    const delivered = sink.frames.filter((f) => f['watch'] === 2 && Array.isArray(f['events'])).map((f) => f['revision'] as number);
    expect(cancel['resumeRevision']).toBe(delivered.at(-1)! + 1);
  });
});

describe('a revision too big for one frame', () => {
  const limits: WatchLimits = { watchesPerConnectionMax: 100, watchesMax: 100, fragmentBytesMax: 4_000 };
  const bigTxn = (): NamespaceCommand => ({ op: 'txn', compare: [], success: Array.from({ length: 6 }, (_, i) => ({ op: 'put' as const, path: `/f/n${i}`, value: new Uint8Array(1_500) })), failure: [] });

  it('goes out live as fragments marked more (one event never split), and replays the same way', async () => {
    const { hub, apply } = harness(limits);
    const live = new ThrottledSink();
    hub.watch(live, 1, spec('/f', 'subtree'));
    const revision = apply(bigTxn());
    await turn();
    const fragments = live.frames.filter((f) => f['revision'] === revision);
    expect(fragments.length).toBeGreaterThan(1);
    expect(fragments.slice(0, -1).every((f) => f['more'] === true)).toBe(true);
    expect(fragments.at(-1)!['more']).toBeUndefined();
    for (const f of fragments) expect(JSON.stringify(f['events']).length).toBeLessThanOrEqual(limits.fragmentBytesMax);
    const paths = fragments.flatMap((f) => (f['events'] as { path: string }[]).map((e) => e.path));
    expect(paths).toEqual(['/f', ...Array.from({ length: 6 }, (_, i) => `/f/n${i}`)]);

    const replayed = new ThrottledSink();
    hub.watch(replayed, 2, spec('/f', 'subtree', { fromRevision: revision }));
    await turnsUntil(() => replayed.revisions().includes(revision), 10);
    expect(replayed.frames.map((f) => f['events'])).toEqual(fragments.map((f) => f['events']));
  });

  it('cancels a live watcher whose connection will not take the rest, at that revision (so its resume replays it whole)', async () => {
    const { hub, apply } = harness(limits);
    const sink = new ThrottledSink();
    hub.watch(sink, 1, spec('/f', 'subtree'));
    apply(put('/f/first', 'x'));
    await turn();
    sink.room = 1; // takes one fragment of the next revision, then refuses
    const revision = apply(bigTxn());
    await turn();
    expect(sink.frames.at(-1)).toMatchObject({ watch: 1, canceled: true, code: 'SLOW_CONSUMER', resumeRevision: revision });
  });
});

describe('watch limits', () => {
  it('refuses a watch past the per-connection or per-member bound with RESOURCE_EXHAUSTED naming the limit', () => {
    const { hub } = harness({ watchesPerConnectionMax: 2, watchesMax: 3, fragmentBytesMax: 1 << 20 });
    const a = new ThrottledSink();
    const b = new ThrottledSink();
    expect(hub.watch(a, 1, spec('/x', 'node')).ok).toBe(true);
    expect(hub.watch(a, 2, spec('/x', 'node')).ok).toBe(true);
    expect(hub.watch(a, 3, spec('/x', 'node'))).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED', limit: 'watchesPerConnectionMax' });
    expect(hub.watch(b, 1, spec('/x', 'node')).ok).toBe(true);
    expect(hub.watch(b, 2, spec('/x', 'node'))).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED', limit: 'watchesMax' });
    hub.cancel(a, 1);
    expect(hub.watch(b, 2, spec('/x', 'node')).ok).toBe(true);
    expect(hub.size).toBe(3);
  });
});

describe('matching along the changed path (PathTrie)', () => {
  it('finds the items at a path and at each ancestor, root first, and prunes what it no longer needs', () => {
    const trie = new PathTrie<string>();
    trie.add('/', 'root');
    trie.add('/a', 'a');
    trie.add('/a/b/c', 'abc');
    trie.add('/x', 'x');
    expect([...trie.alongPath('/a/b/c/d')]).toEqual(['root', 'a', 'abc']);
    expect([...trie.alongPath('/a/b')]).toEqual(['root', 'a']);
    expect([...trie.alongPath('/')]).toEqual(['root']);
    expect([...trie.alongPath('/ab')]).toEqual(['root']);
    trie.remove('/a/b/c', 'abc');
    trie.remove('/', 'root');
    expect([...trie.alongPath('/a/b/c/d')]).toEqual(['a']);
    trie.remove('/a', 'a');
    trie.remove('/x', 'x');
    expect([...trie.alongPath('/a/b/c/d')]).toEqual([]);
  });

  it('delivers a change 2,000 levels deep to the subtree watchers above it, and to no unrelated one', async () => {
    const { hub, apply } = harness();
    const unrelated = new ThrottledSink();
    const above = new ThrottledSink();
    hub.watch(unrelated, 1, spec('/unrelated', 'subtree'));
    hub.watch(above, 1, spec('/a/a/a', 'subtree'));
    const deep = '/a'.repeat(2_000);
    const revision = apply({ ...put(deep, 'deep'), limits: { writeNodesMax: 2_000, writePathBytesMax: 8 * 1024 * 1024 } } as NamespaceCommand);
    await turn();
    expect(unrelated.frames).toEqual([]);
    const events = above.frames.filter((f) => f['revision'] === revision).flatMap((f) => f['events'] as { path: string }[]);
    expect(events).toHaveLength(1_998); // /a/a/a and everything below it, created by the put
    expect(events.at(-1)!.path).toBe(deep);
  });
});

describe('bookmarks asked for again and again', () => {
  it('pushes one round of bookmarks per revision, however often progress is asked with nothing new', () => {
    const { hub, apply } = harness();
    const sink = new ThrottledSink();
    for (let id = 1; id <= 50; id++) hub.watch(sink, id, spec(`/b/${id}`, 'node'));
    for (let i = 0; i < 1_000; i++) hub.progress(sink);
    expect(sink.frames.filter((f) => f['progress'] === true)).toHaveLength(50);
    // Something new (a revision, a watch) earns a new round.
    apply(put('/elsewhere', 'x'));
    hub.progress(sink);
    expect(sink.frames.filter((f) => f['progress'] === true)).toHaveLength(100);
    hub.watch(sink, 51, spec('/b/51', 'node'));
    hub.progress(sink);
    expect(sink.frames.filter((f) => f['progress'] === true)).toHaveLength(151);
  });
});

describe('work per turn, for every watcher together', () => {
  it('fans a burst of revisions out a turn\'s worth of frames at a time, in order, missing none', async () => {
    const { hub, namespace } = harness();
    const sinks = Array.from({ length: 10 }, () => new ThrottledSink());
    sinks.forEach((sink, i) => hub.watch(sink, i + 1, spec('/burst', 'subtree')));
    // 3,000 revisions queued before the hub gets a turn: 30,000 frames in all.
    for (let i = 1; i <= 3_000; i++) hub.publish(namespace.apply(put('/burst/k', `v${i}`)).events);
    await turn();
    const afterOne = sinks.reduce((n, s) => n + s.revisions().length, 0);
    expect(afterOne).toBeGreaterThan(0);
    expect(afterOne).toBeLessThan(30_000);
    await turnsUntil(() => sinks.every((s) => s.revisions().length === 3_000), 20);
    for (const sink of sinks) expect(sink.revisions()).toEqual(Array.from({ length: 3_000 }, (_, i) => i + 1));
  });

  it('shares one turn\'s replay budget among replaying watchers, each getting a turn', async () => {
    const { hub, apply } = harness();
    for (let i = 1; i <= 4_000; i++) apply(put('/r/k', `v${i}`));
    const sinks = Array.from({ length: 3 }, () => new ThrottledSink());
    sinks.forEach((sink, i) => hub.watch(sink, 1, spec('/r', 'subtree', { fromRevision: 1 + i })));
    await turn();
    // Every replay moved in the first turn, none finished: the turn's budget was shared.
    for (const sink of sinks) {
      expect(sink.revisions().length).toBeGreaterThan(0);
      expect(sink.revisions().length).toBeLessThan(3_990);
    }
    await turnsUntil(() => sinks.every((s, i) => s.revisions().length === 4_000 - i), 100);
  });
});
