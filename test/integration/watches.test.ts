/**
 * Watches over the protocol with real `wardend` processes: recorded watch streams, under random
 * writes through every member, compactions below the watches, a member killed and restarted
 * (its watchers resume on another member from their last revision + 1), are checked by the
 * validator (test/server/watch/validate-watch.ts) for the six guarantees: ordered, unique,
 * reliable, atomic, resumable, bookmarkable. Then: a watcher that does not read is cancelled
 * with SLOW_CONSUMER and its resume revision while another watcher gets everything; bad input.
 *
 * Must never: leave a process or a folder behind; wait without a bound.
 */

import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { b64, Cluster, ProtocolClient } from './cluster.js';
import { clusterForSuite } from './suite.js';
import { validateWatchStream, type ExpectedRevision, type WireEvent } from '../server/watch/validate-watch.js';
import { isAncestorOf, parentOf } from '../../shared/paths.js';

let cluster: Cluster;
clusterForSuite((started) => (cluster = started));

/** A deterministic source of choices (the test must replay the same way from its seed). */
function random(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

interface Spec {
  readonly path: string;
  readonly scope: 'node' | 'children' | 'subtree';
  readonly prevNode: boolean;
}

/** A watch followed across connections: its frames, and where to resume after losing one. */
class FollowedWatch {
  readonly frames: Record<string, unknown>[] = [];
  lastRevision: number;
  client: ProtocolClient | null = null;

  constructor(
    readonly watchId: number,
    readonly spec: Spec,
    readonly startRevision: number,
  ) {
    this.lastRevision = startRevision - 1;
  }

  async open(url: string): Promise<void> {
    const client = await ProtocolClient.connect(url);
    client.socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      if (frame['watch'] !== this.watchId) return;
      this.frames.push(frame);
      if (typeof frame['revision'] === 'number') this.lastRevision = Math.max(this.lastRevision, frame['revision']);
    });
    const answer = await client.request('watch', { watchId: this.watchId, path: this.spec.path, scope: this.spec.scope, prevNode: this.spec.prevNode, fromRevision: this.lastRevision + 1 });
    expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true, watchId: this.watchId });
    this.client = client;
  }

  /** The events of this watch only (progress and cancel frames are judged by the validator too). */
  inScope(path: string): boolean {
    if (this.spec.scope === 'node') return path === this.spec.path;
    if (this.spec.scope === 'children') return parentOf(path) === this.spec.path;
    return path === this.spec.path || isAncestorOf(this.spec.path, path);
  }
}

/** The reference stream restricted to a watch's scope, prevNode kept only if it asked for it. */
function expectedFor(reference: readonly Record<string, unknown>[], watch: FollowedWatch): ExpectedRevision[] {
  const out: ExpectedRevision[] = [];
  for (const frame of reference) {
    if (!Array.isArray(frame['events'])) continue;
    const events = (frame['events'] as WireEvent[])
      .filter((event) => watch.inScope(event.path))
      .map((event) => {
        if (watch.spec.prevNode) return event;
        const { prevNode: _prevNode, ...rest } = event;
        return rest;
      });
    if (events.length > 0) out.push({ revision: frame['revision'] as number, events });
  }
  return out;
}

async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25)); // polling interval, bounded by the deadline
  }
}

describe('watches over the protocol', () => {
  it('keeps all six guarantees under random writes, compactions and a member restart, checked by the validator', async () => {
    const leader = await cluster.leader();
    const [stable, restarted, other] = [cluster.member(leader), ...cluster.members.filter((m) => m.name !== leader)] as const;
    const writer = await ProtocolClient.connect(stable.clientUrl);
    const pick = random(20261123);
    const paths = ['/w', '/w/a', '/w/b', '/w/a/x', '/w/a/y', '/w/b/x', '/other'];
    const parentsFirst = async (): Promise<void> => {
      for (const p of ['/w', '/w/a', '/w/b']) await writer.request('put', { path: p, value: b64('dir') });
    };
    await parentsFirst();
    for (let i = 0; i < 20; i++) await writer.request('put', { path: '/other', value: b64(`before-${i}`) });
    const start = ((await writer.request('status'))['revision'] as number) + 1;

    // The reference: a subtree watch on the member that is never restarted.
    const reference = new FollowedWatch(1, { path: '/w', scope: 'subtree', prevNode: true }, start);
    await reference.open(stable.clientUrl);
    const watches = [
      new FollowedWatch(2, { path: '/w/a', scope: 'subtree', prevNode: false }, start),
      new FollowedWatch(3, { path: '/w', scope: 'children', prevNode: true }, start),
      new FollowedWatch(4, { path: '/w/a/x', scope: 'node', prevNode: true }, start),
      new FollowedWatch(5, { path: '/w', scope: 'subtree', prevNode: false }, start),
    ];
    for (const watch of watches) await watch.open(restarted.clientUrl);

    const write = async (): Promise<void> => {
      const path = paths[pick(paths.length)]!;
      const roll = pick(10);
      if (roll < 5) await writer.request('put', { path, value: b64(`v${pick(1000)}`) });
      else if (roll < 7) await writer.request('delete', { path, recursive: true });
      else if (roll < 9) {
        const second = paths[pick(paths.length)]!;
        await writer.request('txn', { success: [{ op: 'put', path, value: b64('t1') }, { op: 'put', path: second, value: b64('t2') }] });
      } else await parentsFirst();
    };
    for (let i = 0; i < 80; i++) await write();
    // Compaction below the watches' start: they go on undisturbed.
    expect(await writer.request('compact', { revision: start - 5 })).toMatchObject({ ok: true });
    await writer.request('watchProgress');

    // The member holding four watches dies; its watchers resume on another member from last + 1.
    await cluster.kill(restarted.name);
    for (const watch of watches) await watch.open(other.clientUrl);
    for (let i = 0; i < 80; i++) await write();
    cluster.launch(restarted);
    await cluster.leader();
    for (let i = 0; i < 40; i++) await write();

    // A bookmark on each connection: every event at or below its revision has been delivered.
    const end = (await writer.request('status'))['revision'] as number;
    // A bookmark is at the revision its member has applied: a follower a revision behind answers
    // one below `end`, so a watch that is not there yet asks again (as a client would), at most
    // every 200 ms, until the deadline.
    const asked = new Map<number, number>();
    const askLagging = (): boolean => {
      const now = Date.now();
      for (const watch of [reference, ...watches]) {
        if (watch.lastRevision >= end || now - (asked.get(watch.watchId) ?? 0) < 200) continue;
        asked.set(watch.watchId, now);
        void watch.client!.request('watchProgress').catch(() => undefined);
      }
      return [reference, ...watches].every((w) => w.lastRevision >= end);
    };
    await until(askLagging, 10_000, 'every watch reaching the last revision').catch((error: Error) => {
      // Say where each watch stood, and any cancel it got: a stalled watch is otherwise a bare timeout.
      const where = [reference, ...watches].map((w) => `watch ${w.watchId} at ${w.lastRevision}${w.frames.some((f) => f['canceled'] === true) ? ` (cancelled: ${JSON.stringify(w.frames.find((f) => f['canceled'] === true))})` : ''}`);
      const logs = cluster.members.flatMap((m) => m.logs.filter((l) => /watch_invariant_broken|snapshot_installed|slow_/.test(l)).map((l) => `${m.name}: ${l}`));
      throw new Error(`${error.message}; the last revision is ${end}; ${where.join(', ')}${logs.length > 0 ? `\n${logs.slice(-20).join('\n')}` : ''}`);
    });

    // Reliable for the reference: a replay from its start, on yet another member, is the same stream.
    const replay = new FollowedWatch(9, reference.spec, start);
    await replay.open(other.clientUrl);
    await until(() => replay.lastRevision >= end, 10_000, 'the replay reaching the last revision');
    const replayed = replay.frames.filter((f) => Array.isArray(f['events'])).map((f) => ({ revision: f['revision'] as number, events: f['events'] as WireEvent[] }));
    expect(replayed.length).toBeGreaterThan(50);
    expect(validateWatchStream(reference.frames, replayed, { watchId: 1, prevNode: true })).toEqual([]);
    // Every other watch, across its resumption, is the reference restricted to its scope.
    for (const watch of watches) {
      expect(validateWatchStream(watch.frames, expectedFor(reference.frames, watch), { watchId: watch.watchId, prevNode: watch.spec.prevNode }), `watch ${watch.watchId}`).toEqual([]);
    }
    // Compacting past the start: a watch from there is refused with the compaction revision.
    expect(await writer.request('compact', { revision: end })).toMatchObject({ ok: true });
    const late = await writer.request('watch', { watchId: 77, path: '/w', scope: 'subtree', fromRevision: start });
    expect(late).toMatchObject({ ok: false, error: { code: 'COMPACTED', compactRevision: end } });
    for (const client of [writer, reference.client, replay.client, ...watches.map((w) => w.client)]) client?.close();
  }, 180_000);

  it('cancels a watcher that does not read with SLOW_CONSUMER and its resume revision; another watcher gets everything', async () => {
    const leader = await cluster.leader();
    const member = cluster.member(leader);
    const writer = await ProtocolClient.connect(member.clientUrl);
    expect(await writer.request('put', { path: '/slow', value: b64('') })).toMatchObject({ ok: true });
    const start = ((await writer.request('status'))['revision'] as number) + 1;
    const reader = new FollowedWatch(1, { path: '/slow', scope: 'subtree', prevNode: false }, start);
    await reader.open(member.clientUrl);

    // The sleeper stops reading its socket right after its watch is answered.
    const sleeper = await ProtocolClient.connect(member.clientUrl);
    const sleeperFrames: Record<string, unknown>[] = [];
    sleeper.socket.on('message', (data) => void sleeperFrames.push(JSON.parse(data.toString()) as Record<string, unknown>));
    expect(await sleeper.request('watch', { watchId: 5, path: '/slow', scope: 'subtree', fromRevision: start })).toMatchObject({ ok: true });
    sleeper.socket.pause();

    const big = Buffer.alloc(256 * 1024, 0x61).toString('base64');
    let last = 0;
    for (let i = 0; i < 160; i++) last = (await writer.request('put', { path: `/slow/k${i % 10}`, value: big }))['revision'] as number;
    await until(() => reader.lastRevision >= last, 30_000, 'the reading watcher getting every revision');
    sleeper.socket.resume();
    await until(() => sleeperFrames.some((f) => f['canceled'] === true), 30_000, 'the sleeper seeing its cancel frame');

    const cancel = sleeperFrames.find((f) => f['canceled'] === true)!;
    expect(cancel).toMatchObject({ watch: 5, code: 'SLOW_CONSUMER', resumeRevision: expect.any(Number) });
    const delivered = sleeperFrames.filter((f) => Array.isArray(f['events'])).map((f) => f['revision'] as number);
    // Everything before the cancel arrived in order, without a gap; the resume revision is the first not delivered.
    expect(delivered).toEqual(Array.from({ length: delivered.length }, (_, i) => start + i));
    expect(cancel['resumeRevision']).toBe(start + delivered.length);
    expect(cancel['resumeRevision'] as number).toBeLessThanOrEqual(last);
    // The reader got all of it, and the sleeper's connection still serves requests.
    expect(reader.frames.filter((f) => Array.isArray(f['events'])).length).toBe(last - start + 1);
    expect(await sleeper.request('get', { path: '/slow' })).toMatchObject({ ok: true });
    for (const client of [writer, reader.client, sleeper]) client?.close();
  }, 120_000);

  it('refuses bad watch requests with a clear code and keeps the connection', async () => {
    const client = await ProtocolClient.connect(cluster.members[0]!.clientUrl);
    expect(await client.request('cancelWatch', { watchId: 4242 })).toMatchObject({ ok: false, error: { code: 'WATCH_NOT_FOUND' } });
    expect(await client.request('watch', { watchId: 1, path: 'relative' })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await client.request('watch', { watchId: 0, path: '/x' })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await client.request('watch', { watchId: 1, path: '/x', scope: 'everything' })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await client.request('watch', { watchId: 1, path: '/x' })).toMatchObject({ ok: true });
    expect(await client.request('watch', { watchId: 1, path: '/y' })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('already') } });
    expect(await client.request('cancelWatch', { watchId: 1 })).toMatchObject({ ok: true });
    expect(await client.request('cancelWatch', { watchId: 1 })).toMatchObject({ ok: false, error: { code: 'WATCH_NOT_FOUND' } });
    expect(client.closed).toBeNull();
    client.close();
  }, 60_000);
});

// Kept for the type checker: the raw socket type the sleeper pauses.
export type { WebSocket };
