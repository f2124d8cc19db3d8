/**
 * Big subtrees and long histories against one 3-member cluster at the default limits (issue 11,
 * cases 2 and 4): a recursive delete of a node with 20,000 children is refused whole (TOO_LARGE,
 * naming writeNodesMax) and the subtree is deleted in pages instead; a delete of exactly 1,000
 * nodes (the per-write bound) goes through; a subtree watch of `/` from revision 1 over 20,000 writes of
 * history, read at full speed, gets every revision once and in order, and a watcher that stops
 * reading for a while is waited for, not cancelled. Every case runs under the arena's
 * invariants (arena.ts); building the subtrees and the history (setup) does not.
 *
 * Must never: sleep as synchronisation (a paused reader resumes on an event: the other watcher
 * caught up and more puts went through); leave a process, connection or folder behind; use a
 * server module.
 */

import { describe, expect, it } from 'vitest';
import { arena } from './arena.js';
import { b64, clock, createChildren, MiB, pipeline, until, type Answer, type Conn } from './conn.js';

const CHILDREN = 20_000;
const WRITE_NODES_MAX = 1_000;
const HISTORY_PUTS = 20_000;
const a = arena();

/** A watcher of `/` from revision 1 that records every revision it completes (fragments joined). */
class Watcher {
  readonly revisions: number[] = [];
  readonly problems: string[] = [];
  readonly cancels: Answer[] = [];
  events = 0;
  private open: number | null = null;

  constructor(readonly conn: Conn) {
    conn.onFrame = (frame) => this.take(frame);
  }

  start(watchId: number): void {
    this.conn.fire('watch', { watchId, path: '/', scope: 'subtree', fromRevision: 1 });
  }

  get last(): number {
    return this.revisions[this.revisions.length - 1] ?? 0;
  }

  private take(frame: Answer): void {
    if (frame['ok'] === false) this.problems.push(`refused: ${JSON.stringify(frame).slice(0, 200)}`);
    if (frame['watch'] === undefined) return;
    if (frame['canceled'] === true) {
      this.cancels.push(frame);
      return;
    }
    if (!Array.isArray(frame['events'])) return;
    const revision = Number(frame['revision']);
    this.events += (frame['events'] as unknown[]).length;
    if (this.open !== null && this.open !== revision) this.problems.push(`revision ${this.open} was left open by a "more" fragment before ${revision}`);
    if (this.open === null && revision <= this.last) this.problems.push(`revision ${revision} after ${this.last}`);
    this.open = frame['more'] === true ? revision : null;
    if (frame['more'] !== true) this.revisions.push(revision);
  }

  /** Problems with the revisions seen up to `target`: each of 1..target exactly once, in order. */
  gaps(target: number): string[] {
    const out = [...this.problems];
    if (this.cancels.length > 0) out.push(`cancelled: ${JSON.stringify(this.cancels[0])}`);
    const upTo = this.revisions.filter((r) => r <= target);
    if (upTo.length !== target) out.push(`${upTo.length} revisions up to ${target}, not ${target}`);
    const missing = upTo.findIndex((r, i) => r !== i + 1);
    if (missing >= 0) out.push(`revision ${missing + 1} came as ${upTo[missing]}`);
    return out;
  }
}

describe('a subtree bigger than one delete', () => {
  it(`refuses a recursive delete of ${CHILDREN.toLocaleString('en')} children whole (TOO_LARGE naming writeNodesMax), then deletes them in pages`, async () => {
    const conn = await a.open(a.leaderUrl);
    expect(await conn.call('put', { path: '/big' })).toMatchObject({ ok: true });
    await createChildren(conn, '/big', CHILDREN);
    await a.underAttack('recursive delete past the limit, then pages', async () => {
      const started = clock();
      expect(await conn.call('delete', { path: '/big', recursive: true })).toMatchObject({
        ok: false,
        error: { code: 'TOO_LARGE', outcome: 'final', limit: { name: 'writeNodesMax', flag: '--max-write-nodes', value: WRITE_NODES_MAX } },
      });
      expect(clock() - started).toBeLessThan(1_000);
      expect(await conn.call('get', { path: '/big' })).toMatchObject({ ok: true, node: { stat: { numChildren: CHILDREN } } });
      let deleted = 0;
      for (let page = 0; page < 1_000; page++) {
        const listed = await conn.call('children', { path: '/big', limit: 128 });
        const names = listed['names'] as string[];
        if (names.length === 0) break;
        expect(await conn.call('txn', { success: names.map((n) => ({ op: 'delete', path: `/big/${n}` })) })).toMatchObject({ ok: true });
        deleted += names.length;
      }
      expect(deleted).toBe(CHILDREN);
      expect(await conn.call('delete', { path: '/big' })).toMatchObject({ ok: true, deleted: 1 });
    });
  });

  it('pages a range over 20,000 deleted paths: each page ends after its walk bound, with next', async () => {
    const conn = await a.open(a.leaderUrl);
    expect(await conn.call('put', { path: '/big/zz-last', value: b64('z') })).toMatchObject({ ok: true });
    await a.underAttack('range over deleted paths', async () => {
      const found: string[] = [];
      let pages = 0;
      for (let after: string | null = null; pages < 10; ) {
        const started = clock();
        const page = await conn.call('range', { path: '/big', limit: 10, ...(after === null ? {} : { after }) });
        expect(page).toMatchObject({ ok: true });
        expect(clock() - started).toBeLessThan(500);
        pages += 1;
        found.push(...(page['nodes'] as { path: string }[]).map((n) => n.path));
        after = (page['next'] as string | null) ?? null;
        if (after === null) break;
      }
      expect(found).toEqual(['/big/zz-last']);
      expect(pages).toBeGreaterThan(1); // the first page stopped at its walk bound, short of /big/zz-last
    });
  });

  it(`deletes a subtree of exactly ${WRITE_NODES_MAX.toLocaleString('en')} nodes in one recursive delete`, async () => {
    const conn = await a.open(a.leaderUrl);
    expect(await conn.call('put', { path: '/exact' })).toMatchObject({ ok: true });
    await createChildren(conn, '/exact', WRITE_NODES_MAX - 1);
    await a.underAttack('recursive delete at the limit', async () => {
      expect(await conn.call('delete', { path: '/exact', recursive: true })).toMatchObject({ ok: true, deleted: WRITE_NODES_MAX });
      expect(await conn.call('get', { path: '/exact' })).toMatchObject({ ok: false, error: { code: 'NO_NODE' } });
    });
  });
});

describe('a watch replaying a long history', () => {
  it(`delivers every revision of ${HISTORY_PUTS.toLocaleString('en')} writes once and in order, at full speed and to a reader that pauses; puts go on`, async () => {
    const writer = await a.open(a.leaderUrl);
    const history = await pipeline(writer, HISTORY_PUTS, 64, (i) => ['put', { path: `/h/k${String(i % 1_000).padStart(4, '0')}`, value: b64(`v${i}`) }], { timeoutMs: 60_000 });
    expect(history.codes).toEqual({});
    const fast = new Watcher(await a.open(a.leaderUrl, { maxPayload: 64 * MiB }));
    const paused = new Watcher(await a.open(a.leaderUrl, { maxPayload: 64 * MiB }));
    const putter = await a.open(a.leaderUrl);
    await a.underAttack('watch replay', async () => {
      const target = Number((await writer.call('status'))['revision']);
      let puts = 0;
      const slowest: number[] = [];
      const failed: Answer[] = [];
      let putting = true;
      const putterDone = (async () => {
        while (putting && failed.length === 0) {
          const sent = clock();
          const answer = await putter.call('put', { path: '/p/k', value: b64(`p${puts}`) });
          slowest.push(clock() - sent);
          if (answer['ok'] !== true) failed.push(answer);
          puts += 1;
        }
      })();
      paused.start(1);
      paused.conn.tcp.pause();
      const started = clock();
      fast.start(1);
      expect(await until(() => fast.last >= target || fast.cancels.length > 0 || fast.problems.length > 0, 60_000), `fast watcher at ${fast.last} of ${target}`).toBe(true);
      const fastMs = clock() - started;
      // The paused reader stays paused until the fast one caught up and 50 more puts went through.
      const putsThen = puts;
      expect(await until(() => puts >= putsThen + 50 || failed.length > 0, 30_000)).toBe(true);
      paused.conn.tcp.resume();
      const now = Number((await writer.call('status'))['revision']);
      expect(await until(() => paused.last >= now || paused.cancels.length > 0 || paused.problems.length > 0, 60_000), `paused watcher at ${paused.last} of ${now}`).toBe(true);
      putting = false;
      await putterDone;
      expect(failed).toEqual([]);
      expect(fast.gaps(target)).toEqual([]);
      expect(paused.gaps(now)).toEqual([]);
      expect(fast.gaps(Math.min(fast.last, now))).toEqual([]);
      expect(Math.max(...slowest), `the slowest of ${puts} puts during the replay`).toBeLessThan(1_000);
      process.stdout.write(`[adversarial] watch replay: ${target} revisions, ${fast.events} events caught up in ${Math.round(fastMs)} ms; ${puts} puts meanwhile\n`);
    });
  });
});
