/**
 * Cases of `npm run bench:adversarial` about the shape of the namespace and its history: a
 * 5,000-deep request id, a recursive delete of a big subtree, a 2,000-level path (with and
 * without an unrelated watch), and a subtree watch replaying a long history at full speed.
 *
 * Must never: import a server module; wait without a bound.
 */

import { b64, brief, clock, codeOf, createChildren, MiB, pipeline } from '../../test/adversarial/conn.js';
import { ms, must, pct, round1, sleep, type CaseSpec, type Row } from './case.js';

const DEEP_ID_DEPTH = 5_000;

export const deepId: CaseSpec = {
  name: 'deep-id',
  label: `deep-id: one status frame whose id is an array nested ${DEEP_ID_DEPTH} deep, sent to the leader`,
  params: { depth: DEEP_ID_DEPTH },
  limitMs: 60_000,
  async attack(ctx) {
    const conn = await ctx.open(ctx.leaderUrl);
    const t0 = clock();
    const answer = await conn.raw(`{"id":${'['.repeat(DEEP_ID_DEPTH)}${']'.repeat(DEEP_ID_DEPTH)},"type":"status"}`, 10_000);
    const wallMs = clock() - t0;
    const after = await conn.call('status', {}, 10_000);
    await sleep(3_000); // a member that is dying has time to exit
    const alive = ctx.cluster.member(ctx.leader).process !== null;
    const closed = conn.closed === null ? null : { code: conn.closed.code, reason: conn.closed.reason, afterMs: round1(conn.closed.at - t0) };
    return {
      details: { target: ctx.leader, wallMs: round1(wallMs), answer, nextStatus: codeOf(after) ?? 'ok', closed, targetAlive: alive },
      rows: [
        ['target', `${ctx.leader} (leader)`],
        ['came back', `${answer === null ? 'no frame' : brief(answer, 160)} (after ${ms(wallMs)})`],
        ['then a status on the same connection', codeOf(after) ?? 'ok'],
        ['connection', closed === null ? 'open' : `closed ${closed.code} "${closed.reason}" after ${ms(closed.afterMs)}`],
        ['target alive 3 s later', alive ? 'yes' : 'NO (exited)'],
      ],
    };
  },
};

export function recursiveDelete(children: number): CaseSpec {
  return {
    name: `recursive-delete@${children}`,
    label: `recursive-delete: /big with ${children.toLocaleString('en')} children, then one recursive delete on the leader`,
    params: { children },
    limitMs: 900_000,
    async setup(ctx) {
      const conn = await ctx.open(ctx.leaderUrl);
      must(await conn.call('put', { path: '/big' }), 'setup put /big');
      const t0 = clock();
      await createChildren(conn, '/big', children, 100);
      ctx.state['setupMs'] = round1(clock() - t0);
    },
    async attack(ctx) {
      let conn = await ctx.open(ctx.leaderUrl);
      const t0 = clock();
      const answer = await conn.call('delete', { path: '/big', recursive: true }, 600_000);
      const answerMs = clock() - t0;
      // When is /big gone, as a linearizable read on the leader of the moment sees it? After an
      // ok, until it is (bounded); after a refusal, a short look only.
      let goneMs: number | null = null;
      const pollUntil = codeOf(answer) === null ? t0 + 600_000 : clock() + 2_000;
      while (clock() < pollUntil) {
        const leader = await ctx.cluster.leader(30_000).catch(() => null);
        if (leader !== null) {
          const url = ctx.cluster.member(leader).clientUrl;
          if (!conn.open || conn.socket.url !== url) conn = await ctx.open(url).catch(() => conn);
          if (codeOf(await conn.call('get', { path: '/big' }, 30_000)) === 'NO_NODE') {
            goneMs = clock() - t0;
            break;
          }
        }
        await sleep(200);
      }
      return {
        details: { children, setupMs: ctx.state['setupMs'], answer: brief(answer, 300), answerCode: codeOf(answer), deleted: answer['deleted'] ?? null, answerMs: round1(answerMs), goneMs: goneMs === null ? null : round1(goneMs) },
        rows: [
          ['children', `${children.toLocaleString('en')} (setup ${ms(ctx.state['setupMs'] as number)}, not counted)`],
          ['delete answer', `${brief(answer, 160)} after ${ms(answerMs)}`],
          ['/big gone after', goneMs === null ? `still there ${ms(clock() - t0)} after the delete was sent` : ms(goneMs)],
        ],
      };
    },
  };
}

const DEEP_LEVELS = 2_000;

/** With `watch` false (case deep-path, not in the default list): the same writes with no watch, for comparison. */
export function deepPath(watch: boolean): CaseSpec {
  return {
    name: watch ? 'deep-path-watch' : 'deep-path',
    label: `${watch ? 'deep-path-watch: an unrelated subtree watch, then a' : 'deep-path: no watch, a'} put ${DEEP_LEVELS} levels deep and a recursive delete of it (leader)`,
    params: { levels: DEEP_LEVELS, watch },
    limitMs: 300_000,
    async setup(ctx) {
      let pushes = 0;
      ctx.state['pushes'] = (): number => pushes;
      if (!watch) return;
      const watcher = await ctx.open(ctx.leaderUrl);
      watcher.onFrame = () => void (pushes += 1);
      must(await watcher.call('watch', { watchId: 1, path: '/unrelated', scope: 'subtree' }, 30_000), 'setup watch');
    },
    async attack(ctx) {
      const conn = await ctx.open(ctx.leaderUrl);
      const t0 = clock();
      const put = await conn.call('put', { path: '/a'.repeat(DEEP_LEVELS), value: b64('x') }, 120_000);
      const putMs = clock() - t0;
      const t1 = clock();
      const del = await conn.call('delete', { path: '/a', recursive: true }, 120_000);
      const delMs = clock() - t1;
      const pushes = (ctx.state['pushes'] as () => number)();
      return {
        details: { levels: DEEP_LEVELS, putMs: round1(putMs), put: brief(put, 200), deleteMs: round1(delMs), delete: brief(del, 200), deleted: del['deleted'] ?? null, unrelatedWatchPushes: pushes },
        rows: [
          [`put (${DEEP_LEVELS} levels)`, `${codeOf(put) ?? 'ok'} after ${ms(putMs)}${codeOf(put) === null ? '' : `: ${brief(put, 120)}`}`],
          ['delete /a recursive', `${codeOf(del) ?? `ok, deleted ${String(del['deleted'])}`} after ${ms(delMs)}${codeOf(del) === null ? '' : `: ${brief(del, 120)}`}`],
          ...(watch ? [['pushes to the unrelated watch', String(pushes)] as Row] : []),
        ],
      };
    },
  };
}

export function watchReplay(puts: number, valueBytes: number): CaseSpec {
  return {
    name: valueBytes === 100 ? 'watch-replay' : `watch-replay@${valueBytes}B`,
    label: `watch-replay: ${puts.toLocaleString('en')} puts of ${valueBytes} B of history, then a subtree watch on / from revision 1 on the leader, read at full speed`,
    params: { puts, keys: 1_000, valueBytes },
    limitMs: 300_000,
    async setup(ctx) {
      const conn = await ctx.open(ctx.leaderUrl);
      const value = b64('v'.repeat(valueBytes));
      const r = await pipeline(conn, puts, 64, (i) => ['put', { path: `/r/k${String(i % 1_000).padStart(4, '0')}`, value }], { timeoutMs: 60_000, deadlineMs: 600_000 });
      if (r.failed > 0) throw new Error(`setup puts failed: ${JSON.stringify(r.codes)}`);
      ctx.state['setupMs'] = round1(r.ms);
    },
    async attack(ctx) {
      const target = Number((await (await ctx.open(ctx.leaderUrl)).call('status', {}, 30_000))['revision']);
      const putter = await ctx.open(ctx.leaderUrl);
      const putLatencies: number[] = [];
      const putFailures: Record<string, number> = {};
      let putting = true;
      const putterDone = (async () => {
        const until = clock() + 240_000;
        while (putting && clock() < until) {
          const sent = clock();
          const code = codeOf(await putter.call('put', { path: '/p/k', value: b64('p') }, 60_000));
          putLatencies.push(clock() - sent);
          if (code !== null) {
            putFailures[code] = (putFailures[code] ?? 0) + 1;
            await sleep(10);
          }
        }
      })();
      const watcher = await ctx.open(ctx.leaderUrl, { maxPayload: 64 * MiB });
      let lastRevision = 0;
      let events = 0;
      let cancels = 0;
      let resumes = 0;
      let watchId = 1;
      const cancelCodes: Record<string, number> = {};
      let finish: (why: string) => void = () => undefined;
      const finished = new Promise<string>((resolve) => (finish = resolve));
      const startWatch = (fromRevision: number): void => {
        void watcher.call('watch', { watchId, path: '/', scope: 'subtree', fromRevision }, 120_000).then((a) => {
          if (codeOf(a) !== null) finish(`watch refused: ${brief(a, 120)}`);
        });
      };
      watcher.onFrame = (frame) => {
        if (frame['watch'] === undefined) return;
        if (frame['canceled'] === true) {
          cancels += 1;
          const code = typeof frame['code'] === 'string' ? frame['code'] : 'NO_CODE';
          cancelCodes[code] = (cancelCodes[code] ?? 0) + 1;
          const resumeRevision = Number(frame['resumeRevision']);
          if (code === 'SLOW_CONSUMER' && resumes < 50 && resumeRevision >= 1) {
            resumes += 1;
            watchId += 1;
            startWatch(resumeRevision);
          } else finish(`cancelled ${code} (resumes ${resumes})`);
          return;
        }
        if (Array.isArray(frame['events'])) {
          events += (frame['events'] as unknown[]).length;
          lastRevision = Math.max(lastRevision, Number(frame['revision']));
          if (lastRevision >= target && frame['more'] !== true) finish('caught up');
        }
      };
      const t0 = clock();
      startWatch(1);
      const timer = setTimeout(() => finish('not caught up within 180 s'), 180_000);
      const outcome = await Promise.race([finished, watcher.whenClosed(181_000).then(() => `watcher connection closed ${String(watcher.closed?.code)} ${watcher.closed?.reason ?? ''}`)]);
      clearTimeout(timer);
      const catchUpMs = clock() - t0;
      putting = false;
      await Promise.race([putterDone, sleep(61_000)]);
      const sorted = [...putLatencies].sort((a, b) => a - b);
      return {
        details: { puts, setupMs: ctx.state['setupMs'], targetRevision: target, outcome, catchUpMs: round1(catchUpMs), lastRevision, events, bytesRead: watcher.bytesIn, cancels, cancelCodes, resumes, putter: { puts: sorted.length, maxMs: round1(sorted[sorted.length - 1] ?? NaN), p99Ms: round1(pct(sorted, 0.99)), failures: putFailures } },
        rows: [
          ['history', `${puts.toLocaleString('en')} puts (setup ${ms(ctx.state['setupMs'] as number)}, not counted); target revision ${target}`],
          ['watcher', `${outcome} after ${ms(catchUpMs)}; revision ${lastRevision}, ${events.toLocaleString('en')} events, ${(watcher.bytesIn / MiB).toFixed(1)} MiB read`],
          ['cancels', `${cancels} ${JSON.stringify(cancelCodes)}, resumes ${resumes}`],
          ['concurrent putter', `${sorted.length} puts, p99 ${ms(pct(sorted, 0.99))}, max ${ms(sorted[sorted.length - 1])}, failures ${JSON.stringify(putFailures)}`],
        ],
      };
    },
  };
}
