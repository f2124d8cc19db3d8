/**
 * Cases of `npm run bench:adversarial` about load one client puts on a member: a transaction
 * whose answer would be 170 MB, connections that stop reading, a session's answers past the
 * 1,024 kept, and sessions (a write stamped with another client's session; a register flood).
 *
 * Must never: import a server module; wait without a bound.
 */

import { b64, brief, clock, codeOf, forgedSecret, MiB, pipeline, sessionOf, stamp, valueOf, type Fields } from '../../test/adversarial/conn.js';
import { ms, must, round1, sleep, type CaseSpec, type Ctx } from './case.js';

async function putBigValue(ctx: Ctx, path: string): Promise<void> {
  must(await (await ctx.open(ctx.leaderUrl)).call('put', { path, value: valueOf(MiB) }, 60_000), `setup put ${path} of 1 MiB`);
}

export const bigAnswer: CaseSpec = {
  name: 'big-answer',
  label: 'big-answer: a 1 MiB value at /big1, then one txn of 128 gets of it, on the leader',
  params: { valueBytes: MiB, gets: 128 },
  limitMs: 400_000,
  setup: (ctx) => putBigValue(ctx, '/big1'),
  async attack(ctx) {
    const conn = await ctx.open(ctx.leaderUrl, { maxPayload: 1024 * MiB });
    const t0 = clock();
    const answer = await conn.call('txn', { success: Array.from({ length: 128 }, () => ({ op: 'get', path: '/big1' })) }, 300_000);
    const wallMs = clock() - t0;
    const code = codeOf(answer);
    const results = Array.isArray(answer['results']) ? (answer['results'] as unknown[]).length : null;
    const shown = code === null ? `ok, ${String(results ?? '?')} results` : brief(answer, 200);
    return {
      details: { wallMs: round1(wallMs), receivedMs: conn.framesIn > 0 ? round1(conn.lastReceivedAt - t0) : null, answerCode: code, answer: shown, answerBytes: conn.bytesIn, results },
      rows: [
        ['txn answer', `${shown}: received after ${ms(conn.lastReceivedAt - t0)}, parsed by this client after ${ms(wallMs)}`],
        ['answer size', `${(conn.bytesIn / MiB).toFixed(1)} MiB`],
      ],
    };
  },
};

const UNREAD_CONNECTIONS = 10;
const UNREAD_FIRST = 200;
const UNREAD_MORE = 100;
const UNREAD_SEND_MS = 5_000;

export function unread(maxPerConnection: number): CaseSpec {
  return {
    name: maxPerConnection === 1_200 ? 'unread' : `unread@${maxPerConnection}`,
    label: `unread: ${UNREAD_CONNECTIONS} connections to the leader stop reading and pipeline gets of a 1 MiB node (at most ${maxPerConnection} each) for ${UNREAD_SEND_MS / 1000} s`,
    params: { connections: UNREAD_CONNECTIONS, first: UNREAD_FIRST, topUp: UNREAD_MORE, maxPerConnection, sendMs: UNREAD_SEND_MS },
    limitMs: 120_000,
    setup: (ctx) => putBigValue(ctx, '/big1'),
    async attack(ctx) {
      const conns = await Promise.all(Array.from({ length: UNREAD_CONNECTIONS }, () => ctx.open(ctx.leaderUrl)));
      const tallies = conns.map(() => ({ ok: 0, codes: {} as Record<string, number>, sent: 0 }));
      conns.forEach((c, i) => {
        c.onFrame = (frame) => {
          const code = codeOf(frame);
          if (code === null) tallies[i]!.ok += 1;
          else tallies[i]!.codes[code] = (tallies[i]!.codes[code] ?? 0) + 1;
        };
        c.tcp.pause();
      });
      const send = (i: number, n: number): void => {
        const count = Math.min(n, maxPerConnection - tallies[i]!.sent);
        for (let k = 0; k < count; k++) conns[i]!.fire('get', { path: '/big1' });
        tallies[i]!.sent += count;
      };
      const t0 = clock();
      conns.forEach((_, i) => send(i, UNREAD_FIRST));
      while (clock() - t0 < UNREAD_SEND_MS) {
        await sleep(500); // the attack's pace, not synchronisation
        conns.forEach((_, i) => send(i, UNREAD_MORE));
      }
      const resumedAtMs = clock() - t0;
      for (const c of conns) c.tcp.resume();
      await Promise.all(conns.map((c) => c.whenClosed(20_000)));
      const closed = conns.filter((c) => c.closed !== null);
      const reasons = [...new Set(closed.map((c) => `${c.closed!.code} "${c.closed!.reason}"`))];
      const errors: Record<string, number> = {};
      for (const t of tallies) for (const [k, v] of Object.entries(t.codes)) errors[k] = (errors[k] ?? 0) + v;
      const sent = tallies.reduce((n, t) => n + t.sent, 0);
      return {
        details: { resumedAtMs: round1(resumedAtMs), sent, closedCount: closed.length, reasons, answersOk: tallies.map((t) => t.ok), errors },
        rows: [
          ['sent', `${sent.toLocaleString('en')} gets over ${UNREAD_CONNECTIONS} connections (${UNREAD_FIRST} each, +${UNREAD_MORE} every 0.5 s, cap ${maxPerConnection})`],
          ['closed by the server', `${closed.length}/${UNREAD_CONNECTIONS}${reasons.length > 0 ? `: ${reasons.join(', ')}` : ''} (seen once the sockets resumed at ${ms(resumedAtMs)})`],
          ['answers read after resuming', `ok ${tallies.map((t) => t.ok).join('/')}; errors ${JSON.stringify(errors)}`],
        ],
      };
    },
  };
}

const ANSWER_BOUND_WRITES = 1_100;

export const answerBound: CaseSpec = {
  name: 'answer-bound',
  label: `answer-bound: a session, ${ANSWER_BOUND_WRITES.toLocaleString('en')} stamped sequential creates (ackedThrough 0), then seq 1 retried`,
  params: { writes: ANSWER_BOUND_WRITES },
  limitMs: 180_000,
  async attack(ctx) {
    const conn = await ctx.open(ctx.leaderUrl);
    const session = sessionOf(await conn.call('register', {}, 30_000));
    const create = (seq: number): Fields => ({ path: '/seq/n-', sequential: true, parents: true, client: stamp(session, seq, 0) });
    const r = await pipeline(conn, ANSWER_BOUND_WRITES, ANSWER_BOUND_WRITES, (i) => ['create', create(i + 1)], { timeoutMs: 60_000, deadlineMs: 120_000, keep: true });
    const pathOf = (a: Record<string, unknown> | undefined): string | null => ((a?.['node'] as { path?: unknown } | undefined)?.path as string | undefined) ?? null;
    const firstPath = pathOf(r.answers[0]);
    const retry = await conn.call('create', create(1), 30_000);
    const retryPath = pathOf(retry);
    const children = await conn.call('children', { path: '/seq' }, 30_000);
    const count = Array.isArray(children['names']) ? (children['names'] as unknown[]).length : null;
    const verdict =
      count === r.ok + 1 || (retryPath !== null && retryPath !== firstPath)
        ? 'BUG: the retry was applied twice'
        : retryPath !== null
          ? 'the retry answered its recorded result'
          : `the retry was refused (${String(codeOf(retry))}), never applied twice`;
    return {
      details: { session: { id: session.id, secret: session.secret !== undefined }, createsOk: r.ok, createCodes: r.codes, createsMs: round1(r.ms), firstPath, retry: brief(retry, 200), retryPath, children: count, verdict },
      rows: [
        ['creates', `${r.ok} ok ${JSON.stringify(r.codes)} in ${ms(r.ms)}; seq 1 made ${String(firstPath)}`],
        ['retry of seq 1', brief(retry, 160)],
        ['nodes under /seq', `${String(count)} (${ANSWER_BOUND_WRITES} correct) — ${verdict}`],
      ],
    };
  },
};

export function sessions(registers: number): CaseSpec {
  return {
    name: 'sessions',
    label: `sessions: (a) a write stamped with another connection's session; (b) ${registers.toLocaleString('en')} registers flood, then a live client's next write`,
    params: { registers, floodConnections: 4, inFlightPerConnection: 1_000 },
    limitMs: 600_000,
    async attack(ctx) {
      // (a) Impersonation: the old protocol had no secret, so the intruder sends none there.
      const a = await ctx.open(ctx.leaderUrl);
      const sa = sessionOf(await a.call('register', {}, 30_000));
      const own1 = await a.call('put', { path: '/s/a1', value: b64('a1'), client: stamp(sa, 1, 0) }, 30_000);
      const b = await ctx.open(ctx.followerUrl);
      const forged = sa.secret === undefined ? undefined : forgedSecret(sa.secret);
      const hijack = await b.call('put', { path: '/s/hijack', value: b64('h'), client: stamp(sa, 2, 1, forged) }, 30_000);
      const own2 = await a.call('put', { path: '/s/a2', value: b64('a2'), client: stamp(sa, 2, 1) }, 30_000);
      const exists = async (path: string): Promise<string> => {
        const code = codeOf(await a.call('get', { path }, 30_000));
        return code === null ? 'applied' : code === 'NO_NODE' ? 'not applied' : `unknown (${code})`;
      };
      const hijackApplied = await exists('/s/hijack');
      const own2Applied = await exists('/s/a2');
      // (b) A flood of registers, then a live session's next write.
      const l = await ctx.open(ctx.leaderUrl);
      const sl = sessionOf(await l.call('register', {}, 30_000));
      must(await l.call('put', { path: '/s/l1', value: b64('l1'), client: stamp(sl, 1, 0) }, 30_000), 'L seq 1');
      const flooders = await Promise.all(Array.from({ length: 4 }, () => ctx.open(ctx.leaderUrl)));
      const t0 = clock();
      const results = await Promise.all(flooders.map((f, k) => pipeline(f, Math.floor(registers / 4) + (k < registers % 4 ? 1 : 0), 1_000, () => ['register', {}], { timeoutMs: 120_000, deadlineMs: 400_000 })));
      const floodMs = clock() - t0;
      const refused: Record<string, number> = {};
      for (const r of results) for (const [k, v] of Object.entries(r.codes)) refused[k] = (refused[k] ?? 0) + v;
      const accepted = results.reduce((s, r) => s + r.ok, 0);
      const l2 = await l.call('put', { path: '/s/l2', value: b64('l2'), client: stamp(sl, 2, 1) }, 30_000);
      return {
        details: { a: { own1: brief(own1, 160), hijack: brief(hijack, 200), hijackApplied, ownSeq2: brief(own2, 200), ownSeq2Applied: own2Applied }, b: { registers, accepted, refused, floodMs: round1(floodMs), next: brief(l2, 200) } },
        rows: [
          ['(a) B stamps A/seq 2 with a wrong secret', `${brief(hijack, 120)} — ${hijackApplied}`],
          ['(a) A then sends its own seq 2', `${brief(own2, 120)} — /s/a2 ${own2Applied}`],
          ['(b) flood', `${registers.toLocaleString('en')} registers (4 connections × 1,000 in flight) in ${ms(floodMs)}: ${accepted.toLocaleString('en')} accepted, refused ${JSON.stringify(refused)}`],
          ['(b) L next stamped write', brief(l2, 160)],
        ],
      };
    },
  };
}
