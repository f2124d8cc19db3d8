/**
 * Adversarial frames against one 3-member cluster (issue 11, cases 1, 3, 5, 7, 8, 9, 10a, 11):
 * hostile request ids, a 2,000-level path next to a watch, a transaction whose answer would be
 * 170 MB, values past the limit or in non-canonical base64, a session's answers past the 1,024
 * kept, and a write stamped with another client's session. Every case runs under the arena's
 * invariants (arena.ts): the canary keeps working, no member's event loop stalls, memory stays
 * bounded, the leader stays, no member exits.
 *
 * Must never: sleep as synchronisation (waits are on answers and events, with bounds); leave a
 * process, connection or folder behind; use a server module (the wire protocol only).
 */

import { describe, expect, it } from 'vitest';
import { arena, OLD_SERVER } from './arena.js';
import { b64, codeOf, errorOf, forgedSecret, MiB, pipeline, sessionOf, stamp, until, valueOf, type Answer } from './conn.js';

const a = arena();

/** The commit index the members agree on, once they do (a follower learns it a heartbeat later). */
async function settledCommit(): Promise<number> {
  let seen: number[] = [];
  const agreed = await until(async () => {
    seen = await Promise.all(a.cluster.members.map(async (m) => Number((await a.cluster.status(m.name))?.['commit'] ?? NaN)));
    return seen.every((c) => c === seen[0] && !Number.isNaN(c));
  }, 5_000, 50);
  if (!agreed) throw new Error(`the members' commit indexes did not agree within 5 s: ${seen.join(', ')}`);
  return seen[0]!;
}
const nodePath = (answer: Answer): string | null => ((answer['node'] as { path?: unknown } | undefined)?.path as string | undefined) ?? null;

describe('hostile request ids', () => {
  it('answers an id nested 5,000 deep with INVALID_ARGUMENT and id null; the connection and the member go on', async () => {
    const conn = await a.open(a.leaderUrl);
    await a.underAttack('deep id', async () => {
      const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
      const answer = await conn.raw(`{"id":${deep},"type":"status"}`);
      expect(answer).toMatchObject({ id: null, ok: false, error: { code: 'INVALID_ARGUMENT' } });
      const deepObject = `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`;
      expect(await conn.raw(`{"id":${deepObject},"type":"status"}`)).toMatchObject({ id: null, ok: false, error: { code: 'INVALID_ARGUMENT' } });
      expect(await conn.call('status')).toMatchObject({ ok: true });
      expect(conn.open).toBe(true);
    });
  });

  it('answers an integer id past 2^53 and an over-long string id with id null, never echoed; ids at the bounds are echoed', async () => {
    const conn = await a.open(a.followerUrl);
    await a.underAttack('ids past their bounds', async () => {
      for (const id of ['9007199254740993', '9007199254740992', '-9007199254740992', '1e300', '1.5']) {
        const answer = await conn.raw(`{"id":${id},"type":"status"}`);
        expect(answer, `id ${id}`).toMatchObject({ id: null, ok: false, error: { code: 'INVALID_ARGUMENT' } });
      }
      for (const id of ['x'.repeat(129), '', 'é'.repeat(129)]) {
        expect(await conn.raw(JSON.stringify({ id, type: 'status' })), `id of ${id.length} chars`).toMatchObject({ id: null, ok: false, error: { code: 'INVALID_ARGUMENT' } });
      }
      for (const id of [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 'x'.repeat(128), 'é'.repeat(128), 0]) {
        expect(await conn.raw(JSON.stringify({ id, type: 'status' })), `id ${String(id).slice(0, 20)}`).toMatchObject({ id, ok: true });
      }
      expect(conn.open).toBe(true);
    });
  });
});

describe('writes refused whole, before anything is proposed', () => {
  it('refuses a value past 1 MiB with TOO_LARGE naming valueBytesMax; nothing is proposed (commit does not move)', async () => {
    const conn = await a.open(a.followerUrl);
    const leader = await a.open(a.leaderUrl);
    await a.monitor.canaryWrites(false);
    try {
      await a.underAttack('value past the limit', async () => {
        const before = await settledCommit();
        const over = valueOf(MiB + 1);
        const answers = [
          await conn.call('put', { path: '/big/over', value: over }),
          await leader.call('put', { path: '/big/over', value: over }),
          await leader.call('create', { path: '/big/over-c', value: over }),
          await leader.call('txn', { success: [{ op: 'put', path: '/big/over-t', value: over }] }),
          await leader.call('txn', { compare: [{ path: '/big', target: 'value', operator: '=', operand: over }], success: [{ op: 'put', path: '/big/over-cmp', value: b64('x') }] }),
        ];
        // A write proposed would have been committed before its answer: the commit index shows it.
        expect(await settledCommit(), 'the commit index after the refused writes').toBe(before);
        expect(await leader.call('get', { path: '/big/over' })).toMatchObject({ ok: false, error: { code: 'NO_NODE' } });
        for (const answer of answers) {
          expect(answer).toMatchObject({ ok: false, error: { code: 'TOO_LARGE', outcome: 'final', limit: { name: 'valueBytesMax', flag: '--max-value-bytes', value: MiB } } });
        }
        // At the bound: accepted.
        expect(await leader.call('put', { path: '/big/at', value: valueOf(MiB) })).toMatchObject({ ok: true });
      });
    } finally {
      await a.monitor.canaryWrites(true);
    }
  });

  it('refuses base64 that is not canonical, for values and value compare operands: INVALID_ARGUMENT, nothing stored', async () => {
    const conn = await a.open(a.leaderUrl);
    await a.monitor.canaryWrites(false);
    try {
      await a.underAttack('non-canonical base64', async () => {
        const before = await settledCommit();
        const spellings = ['A', 'AAAAA', 'AB==', 'AAA', 'AAB=', 'QUJD\n', 'QQ=', 'QR=='];
        for (const [i, bad] of spellings.entries()) {
          expect(Buffer.from(bad, 'base64').toString('base64')).not.toBe(bad);
          const answers = [
            await conn.call('put', { path: `/b64/put${i}`, value: bad }),
            await conn.call('create', { path: `/b64/create${i}`, value: bad, parents: true }),
            await conn.call('txn', { success: [{ op: 'put', path: `/b64/txn${i}`, value: bad }] }),
            await conn.call('txn', { compare: [{ path: '/b64', target: 'value', operator: '!=', operand: bad }], success: [{ op: 'put', path: `/b64/cmp${i}`, value: b64('x') }], failure: [{ op: 'put', path: `/b64/cmpf${i}`, value: b64('x') }] }),
          ];
          for (const answer of answers) expect(answer, `spelling ${JSON.stringify(bad)}`).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', outcome: 'final' } });
        }
        expect(await conn.call('range', { path: '/b64', limit: 100 })).toMatchObject({ ok: true, nodes: [] });
        expect(await settledCommit()).toBe(before);
        // The canonical spellings of the same lengths are accepted.
        for (const good of ['', 'AA==', 'AAA=', 'AAAA']) expect(await conn.call('put', { path: '/b64/good', value: good })).toMatchObject({ ok: true });
      });
    } finally {
      await a.monitor.canaryWrites(true);
    }
  });
});

describe('work one request may ask for', () => {
  it('builds and deletes a path 2,000 levels deep next to an unrelated watch, a write at a time within the per-write bounds, fast', async () => {
    const watcher = await a.open(a.leaderUrl);
    let pushes = 0;
    watcher.onFrame = () => void (pushes += 1);
    expect(await watcher.call('watch', { watchId: 1, path: '/unrelated', scope: 'subtree' })).toMatchObject({ ok: true });
    const conn = await a.open(a.leaderUrl);
    const PATH_BYTES = 256 * 1024; // --max-write-path-bytes
    await a.underAttack('deep path', async () => {
      const started = performance.now();
      // The whole path in one write: refused before any node is made, naming the bound.
      const whole = await conn.call('put', { path: '/a'.repeat(2_000), value: b64('x') });
      expect(whole).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
      expect(['writeNodesMax', 'writePathBytesMax']).toContain(((whole['error'] as Record<string, unknown>)['limit'] as { name: string }).name);
      // As many levels a write as its paths' bytes allow (each level k is a path of 2k bytes).
      const bounds: number[] = [];
      for (let depth = 0; depth < 2_000; ) {
        let next = depth;
        let bytes = 0;
        while (next < 2_000 && bytes + 2 * (next + 1) <= PATH_BYTES) bytes += 2 * ++next;
        expect(await conn.call('put', { path: '/a'.repeat(next), value: b64('x') })).toMatchObject({ ok: true });
        bounds.push(depth);
        depth = next;
      }
      expect(await conn.call('get', { path: '/a'.repeat(2_000) })).toMatchObject({ ok: true });
      // Deleted from the bottom up, the same pieces.
      for (const depth of bounds.reverse()) {
        expect(await conn.call('delete', { path: '/a'.repeat(depth + 1), recursive: true })).toMatchObject({ ok: true });
      }
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(await conn.call('get', { path: '/a' })).toMatchObject({ ok: false, error: { code: 'NO_NODE' } });
    });
    expect(pushes).toBe(0);
  });

  it('refuses a txn of 128 gets of a 1 MiB node with TOO_LARGE naming answerBytesMax; the leader\'s memory does not jump', async () => {
    const conn = await a.open(a.leaderUrl, { maxPayload: 512 * MiB });
    expect(await conn.call('put', { path: '/big/one', value: valueOf(MiB) })).toMatchObject({ ok: true });
    await a.underAttack('txn answer past the bound', async () => {
      const started = Date.now();
      const gets = Array.from({ length: 128 }, () => ({ op: 'get', path: '/big/one' }));
      const answer = await conn.call('txn', { success: [...gets.slice(0, 127), { op: 'put', path: '/big/applied', value: b64('x') }] }, 60_000);
      expect(answer).toMatchObject({ ok: false, error: { code: 'TOO_LARGE', limit: { name: 'answerBytesMax', flag: '--max-answer-bytes', value: 4 * MiB } } });
      expect(await conn.call('txn', { success: gets }, 60_000)).toMatchObject({ ok: false, error: { code: 'TOO_LARGE', limit: { name: 'answerBytesMax' } } });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await conn.call('get', { path: '/big/applied' })).toMatchObject({ ok: false, error: { code: 'NO_NODE' } }); // nothing applied
      expect(conn.bytesIn).toBeLessThan(4 * MiB);
    });
    const rss = a.lastReport!.figures.rssMiB[a.leader]!;
    expect(rss.peak! - rss.baseline!, `leader RSS ${String(rss.baseline)} → ${String(rss.peak)} MiB`).toBeLessThan(100);
  });
});

describe('client sessions', () => {
  it('answers a retry of an answer dropped past the 1,024 kept with OUTCOME_UNKNOWN, never applying it twice', async () => {
    const conn = await a.open(a.leaderUrl);
    await a.underAttack('1,100 unacknowledged answers', async () => {
      const session = sessionOf(await conn.call('register'));
      const create = (seq: number): Record<string, unknown> => ({ path: '/seq/n-', sequential: true, parents: true, client: stamp(session, seq, 0) });
      const r = await pipeline(conn, 1_100, 1_100, (i) => ['create', create(i + 1)], { timeoutMs: 30_000, keep: true });
      expect(r.codes).toEqual({});
      const retryOld = await conn.call('create', create(1));
      expect(retryOld).toMatchObject({ ok: false, error: { code: 'OUTCOME_UNKNOWN', outcome: 'unknown' } });
      // One still kept answers what it answered the first time, and applies nothing.
      const kept = await conn.call('create', create(1_100));
      expect(kept).toMatchObject({ ok: true });
      expect(nodePath(kept)).toBe(nodePath(r.answers[1_099]!));
      const children = await conn.call('children', { path: '/seq' });
      expect((children['names'] as unknown[] | undefined)?.length).toBe(1_100);
    });
  });

  it('refuses a write stamped with another client\'s id and seq but the wrong secret; the owner\'s write with that seq is then applied', async () => {
    const owner = await a.open(a.leaderUrl);
    const intruder = await a.open(a.followerUrl);
    await a.underAttack('wrong secret', async () => {
      const session = sessionOf(await owner.call('register'));
      expect(await owner.call('put', { path: '/s/own1', value: b64('1'), client: stamp(session, 1, 0) })).toMatchObject({ ok: true });
      // The old protocol had no secret at all: the intruder then sends none, as anyone could.
      const forged = OLD_SERVER && session.secret === undefined ? undefined : forgedSecret(session.secret);
      const hijack = await intruder.call('put', { path: '/s/hijack', value: b64('h'), client: stamp(session, 2, 1, forged) });
      expect(hijack).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED', outcome: 'final' } });
      const replay = await intruder.call('put', { path: '/s/own1', value: b64('h'), client: stamp(session, 1, 0, forged) });
      expect(replay, 'a recorded answer is not handed out for a wrong secret').toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
      expect(await owner.call('put', { path: '/s/own2', value: b64('2'), client: stamp(session, 2, 1) })).toMatchObject({ ok: true });
      expect(codeOf(await owner.call('get', { path: '/s/hijack' }))).toBe('NO_NODE');
      expect(await owner.call('get', { path: '/s/own2' })).toMatchObject({ ok: true });
      expect(errorOf(hijack).limit).toBeUndefined();
    });
  });
});
