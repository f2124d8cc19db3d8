/**
 * The limits on what a member holds for its clients — frame bytes, connections, requests and
 * request bytes in flight, watches, sessions (issue 11 case 10b: a register flood past
 * --max-sessions), leases, nodes one delete removes, unread answers, unsent watch events — each
 * reached (accepted) and passed (refused with RESOURCE_EXHAUSTED or TOO_LARGE naming it, or a
 * close whose reason names its flag), with small flags (FLAGS) so the bounds are cheap to reach.
 * Every case runs under the arena's invariants (arena.ts). Most run on the follower the canary
 * is not on (`quiet`), so the member's counts (/status) are the case's own.
 *
 * Must never: sleep as synchronisation (waits are on answers, closes and /status counts, with
 * bounds); leave a process, connection or folder behind; use a server module.
 */

import { describe, expect, it } from 'vitest';
import { arena } from './arena.js';
import { b64, clock, codeOf, Conn, createChildren, MiB, pipeline, sessionOf, stamp, until, valueOf, type Answer } from './conn.js';

const FRAME_MAX = 1.5 * MiB;
const LIMIT = {
  connectionsMax: 16,
  inFlightPerConnectionMax: 64,
  inFlightBytesPerMemberMax: 8 * MiB,
  watchesPerConnectionMax: 20,
  watchesMax: 50,
  sessionsMax: 2_000,
  leasesMax: 30,
  writeNodesMax: 50,
  unreadBytesPerConnectionMax: 4 * MiB,
  watchUnsentBytesMax: MiB,
};
const FLAG = {
  connectionsMax: '--max-connections',
  inFlightPerConnectionMax: '--max-in-flight',
  inFlightBytesPerMemberMax: '--max-member-in-flight-bytes',
  watchesPerConnectionMax: '--max-watches-per-connection',
  watchesMax: '--max-watches',
  sessionsMax: '--max-sessions',
  leasesMax: '--max-leases',
  writeNodesMax: '--max-write-nodes',
  unreadBytesPerConnectionMax: '--max-unread-bytes',
  watchUnsentBytesMax: '--max-watch-unsent-bytes',
} as const;
const a = arena({ flags: Object.entries(LIMIT).flatMap(([k, v]) => [FLAG[k as keyof typeof FLAG], String(v)]) });

/** What an error past `name` must say. */
const past = (name: keyof typeof LIMIT, code = 'RESOURCE_EXHAUSTED', outcome = code === 'TOO_LARGE' ? 'final' : 'retry'): Record<string, unknown> => ({ ok: false, error: { code, outcome, limit: { name, flag: FLAG[name], value: LIMIT[name] } } });
/** A frame of exactly `bytes` bytes: `text` (a JSON object) padded with spaces before its closing brace. */
const padded = (text: string, bytes: number): string => `${text.slice(0, -1)}${' '.repeat(bytes - Buffer.byteLength(text))}}`;
/** Waits (bounded) until a member's /status `field` satisfies `ok`; answers the last value seen. */
async function statusUntil(name: string, field: string, ok: (value: number) => boolean, timeoutMs = 15_000): Promise<number> {
  let value = NaN;
  await until(async () => ok((value = await a.statusOf(name, field))), timeoutMs, 50);
  return value;
}
/** The id of a granted lease (`lease: {id, ttlMs, …}`). */
const leaseIdOf = (answer: Answer): number => Number((answer['lease'] as { id?: unknown } | undefined)?.id ?? answer['lease']);
/** Answers that reach `conn` outside of `call`, counted. */
function tally(conn: Conn): Answer[] {
  const seen: Answer[] = [];
  conn.onFrame = (frame) => void seen.push(frame);
  return seen;
}

describe('limits on what a member holds for its clients', () => {
  it('reads a frame of exactly --max-frame-bytes; one byte more closes the connection 1009 naming the flag', async () => {
    const conn = await a.open(a.quietUrl);
    await a.underAttack('frame bytes', async () => {
      expect(await conn.raw(padded('{"id":"at","type":"status"}', FRAME_MAX))).toMatchObject({ id: 'at', ok: true });
      conn.sendRaw(padded('{"id":"past","type":"status"}', FRAME_MAX + 1));
      expect(await conn.whenClosed(10_000)).toBe(true);
      expect(conn.closed).toMatchObject({ code: 1009, reason: expect.stringContaining('--max-frame-bytes') });
    });
  });

  it('holds --max-connections connections; the next gets one RESOURCE_EXHAUSTED frame and a 1013 close', async () => {
    await a.underAttack('connections', async () => {
      const open = await statusUntil(a.quiet, 'connections', (n) => n === 1); // the monitor's probe
      const conns = await Promise.all(Array.from({ length: LIMIT.connectionsMax - open }, () => a.open(a.quietUrl)));
      for (const conn of conns) expect(await conn.call('status')).toMatchObject({ ok: true });
      const extra = await Conn.open(a.quietUrl);
      try {
        expect(await extra.nextFrame(10_000)).toMatchObject({ id: null, ...past('connectionsMax') });
        expect(await extra.whenClosed(10_000)).toBe(true);
        expect(extra.closed?.code).toBe(1013);
      } finally {
        extra.terminate();
      }
      a.closeConnections();
      expect(await statusUntil(a.quiet, 'connections', (n) => n === open)).toBe(open);
    });
  });

  it('holds --max-in-flight requests on a connection and --max-member-in-flight-bytes on a member; the next is refused, the held are served', async () => {
    const conn = await a.open(a.quietUrl);
    const writer = await a.open(a.leaderUrl);
    const answers = tally(conn);
    await a.monitor.canaryWrites(false); // held reads wait for the next revision: nobody else may write it
    try {
      await a.underAttack('requests in flight', async () => {
        // The leader's revision: every acknowledged write is applied there. The quiet member may
        // not have applied the canary's last write yet (the leader answers a client before it
        // sends followers the commit), and a held read would be released when it does.
        const revision = Number((await writer.call('status'))['revision']);
        const held = { type: 'get', path: '/canary/k', consistency: 'serializable', minRevision: revision + 1 };
        for (let i = 0; i < LIMIT.inFlightPerConnectionMax; i++) conn.sendRaw(JSON.stringify({ id: `h${i}`, ...held }));
        expect(await conn.call('status')).toMatchObject(past('inFlightPerConnectionMax'));
        expect(answers).toEqual([]); // none of the held was refused
        expect(await writer.call('put', { path: '/held', value: b64('1') })).toMatchObject({ ok: true });
        expect(await until(() => answers.length === LIMIT.inFlightPerConnectionMax, 10_000)).toBe(true);
        expect(answers.every((x) => x['ok'] === true)).toBe(true);

        // Bytes: 7 frames of 1 MiB and one of 1 MiB - 2 KiB held (room for a probe's 1 KiB), then 4 KiB more.
        answers.length = 0;
        const next = { ...held, minRevision: revision + 2 };
        for (let i = 0; i < 7; i++) conn.sendRaw(padded(JSON.stringify({ id: `b${i}`, ...next }), MiB));
        conn.sendRaw(padded(JSON.stringify({ id: 'b7', ...next }), MiB - 2048));
        expect(await conn.raw(padded('{"id":"over","type":"status"}', 4096))).toMatchObject({ id: 'over', ...past('inFlightBytesPerMemberMax') });
        expect(answers).toEqual([]);
        expect(await writer.call('put', { path: '/held', value: b64('2') })).toMatchObject({ ok: true });
        expect(await until(() => answers.length === 8, 10_000)).toBe(true);
        expect(answers.every((x) => x['ok'] === true)).toBe(true);
      });
    } finally {
      await a.monitor.canaryWrites(true);
    }
  });

  it('holds --max-watches-per-connection watches on a connection and --max-watches on a member', async () => {
    await a.underAttack('watches', async () => {
      const before = await a.statusOf(a.quiet, 'watches');
      const [w1, w2, w3] = await Promise.all([a.open(a.quietUrl), a.open(a.quietUrl), a.open(a.quietUrl)]);
      const watch = (conn: Conn, id: number): Promise<Answer> => conn.call('watch', { watchId: id, path: `/w/${id}` });
      for (let id = 1; id <= LIMIT.watchesPerConnectionMax; id++) expect(await watch(w1!, id)).toMatchObject({ ok: true });
      expect(await watch(w1!, 100)).toMatchObject(past('watchesPerConnectionMax'));
      for (let id = 1; id <= LIMIT.watchesPerConnectionMax; id++) expect(await watch(w2!, id)).toMatchObject({ ok: true });
      const room = LIMIT.watchesMax - before - 2 * LIMIT.watchesPerConnectionMax;
      for (let id = 1; id <= room; id++) expect(await watch(w3!, id)).toMatchObject({ ok: true });
      expect(await watch(w3!, 100)).toMatchObject(past('watchesMax'));
      expect(await w1!.call('cancelWatch', { watchId: 1 })).toMatchObject({ ok: true });
      expect(await watch(w3!, 101)).toMatchObject({ ok: true });
      expect(await a.statusOf(a.quiet, 'watches')).toBe(LIMIT.watchesMax);
    });
  });

  it('refuses leases past --max-leases with RESOURCE_EXHAUSTED; a revoke makes room', async () => {
    const conn = await a.open(a.leaderUrl);
    await a.underAttack('leases', async () => {
      const before = await a.statusOf(a.leader, 'leases');
      const ids: number[] = [];
      for (let i = before; i < LIMIT.leasesMax; i++) {
        const granted = await conn.call('leaseGrant', { ttlMs: 60_000 });
        expect(granted).toMatchObject({ ok: true });
        ids.push(leaseIdOf(granted));
      }
      expect(await conn.call('leaseGrant', { ttlMs: 60_000 })).toMatchObject(past('leasesMax'));
      expect(await conn.call('leaseRevoke', { lease: ids[0] })).toMatchObject({ ok: true });
      const again = await conn.call('leaseGrant', { ttlMs: 60_000 });
      expect(again).toMatchObject({ ok: true });
      for (const id of [...ids.slice(1), leaseIdOf(again)]) expect(await conn.call('leaseRevoke', { lease: id })).toMatchObject({ ok: true });
    });
  });

  it('deletes a subtree of --max-write-nodes nodes, refuses one more whole (TOO_LARGE), deletes it in pages; a lease holds as many ephemeral nodes', async () => {
    const conn = await a.open(a.leaderUrl);
    await a.underAttack('delete nodes', async () => {
      for (const [path, children] of [['/d/at', LIMIT.writeNodesMax - 1], ['/d/past', LIMIT.writeNodesMax]] as const) {
        expect(await conn.call('put', { path })).toMatchObject({ ok: true });
        await createChildren(conn, path, children, 16);
      }
      expect(await conn.call('delete', { path: '/d/at', recursive: true })).toMatchObject({ ok: true, deleted: LIMIT.writeNodesMax });
      expect(await conn.call('delete', { path: '/d/past', recursive: true })).toMatchObject(past('writeNodesMax', 'TOO_LARGE'));
      expect(await conn.call('get', { path: '/d/past' })).toMatchObject({ ok: true, node: { stat: { numChildren: LIMIT.writeNodesMax } } });
      for (let after: string | undefined; ; ) {
        const page = await conn.call('children', { path: '/d/past', limit: 20, ...(after === undefined ? {} : { after }) });
        const names = page['names'] as string[];
        if (names.length === 0) break;
        expect(await conn.call('txn', { success: names.map((n) => ({ op: 'delete', path: `/d/past/${n}` })) })).toMatchObject({ ok: true });
        after = names[names.length - 1];
      }
      expect(await conn.call('delete', { path: '/d/past' })).toMatchObject({ ok: true, deleted: 1 });

      const lease = leaseIdOf(await conn.call('leaseGrant', { ttlMs: 60_000 }));
      expect(await conn.call('put', { path: '/d/eph' })).toMatchObject({ ok: true });
      const eph = (i: number): Record<string, unknown> => ({ op: 'create', path: `/d/eph/e${i}`, lease });
      expect(await conn.call('txn', { success: Array.from({ length: LIMIT.writeNodesMax }, (_, i) => eph(i)) })).toMatchObject({ ok: true });
      expect(await conn.call('create', { ...eph(LIMIT.writeNodesMax), op: undefined })).toMatchObject(past('writeNodesMax'));
      expect(await conn.call('leaseRevoke', { lease })).toMatchObject({ ok: true });
    });
  });

  it('drops a connection whose unread answers pass --max-unread-bytes (logged, naming it); one under it is served', async () => {
    const writer = await a.open(a.leaderUrl);
    expect(await writer.call('put', { path: '/u', value: valueOf(900 * 1024) })).toMatchObject({ ok: true });
    const under = await a.open(a.quietUrl);
    const over = await a.open(a.quietUrl, { maxPayload: 64 * MiB });
    await a.underAttack('unread bytes', async () => {
      const mark = a.logMark(a.quiet);
      under.tcp.pause();
      over.tcp.pause();
      const got = tally(under);
      for (let i = 0; i < 2; i++) under.fire('get', { path: '/u' });
      for (let i = 0; i < 16; i++) over.fire('get', { path: '/u' });
      // A paused client cannot see a close: the member's log says when it cut the connection, and why.
      expect(await a.logLine(a.quiet, mark, /"event":"client_cut","reason":"unread"/), 'a client_cut log line').not.toBeNull();
      over.tcp.resume();
      under.tcp.resume();
      expect(await over.whenClosed(10_000)).toBe(true);
      expect(over.closed).toMatchObject({ code: 1006 }); // dropped: a close would sit behind what it did not read
      expect(await until(() => got.length === 2, 10_000)).toBe(true);
      expect(under.open).toBe(true);
    });
  });

  it('cancels a live watch whose unsent events pass --max-watch-unsent-bytes with SLOW_CONSUMER and a resume revision; a reading watcher goes on', async () => {
    const slow = await a.open(a.quietUrl, { maxPayload: 64 * MiB });
    const reader = await a.open(a.quietUrl, { maxPayload: 64 * MiB });
    const writer = await a.open(a.leaderUrl);
    const read = tally(reader);
    const pushed = tally(slow);
    expect(await slow.call('watch', { watchId: 1, path: '/ws', scope: 'subtree' })).toMatchObject({ ok: true });
    expect(await reader.call('watch', { watchId: 1, path: '/ws', scope: 'subtree' })).toMatchObject({ ok: true });
    await a.underAttack('unsent watch bytes', async () => {
      const watches = await a.statusOf(a.quiet, 'watches');
      slow.tcp.pause();
      let puts = 0;
      const cancelled = await until(async () => {
        expect(await writer.call('put', { path: `/ws/k${puts % 4}`, value: valueOf(400 * 1024, 0x41 + (puts % 26)) })).toMatchObject({ ok: true });
        puts += 1;
        return (await a.statusOf(a.quiet, 'watches')) === watches - 1;
      }, 30_000, 0);
      slow.tcp.resume();
      expect(cancelled, `still watching after ${puts} puts of 400 KiB`).toBe(true);
      const cancel = await until(() => pushed.some((f) => f['canceled'] === true), 10_000);
      expect(cancel).toBe(true);
      expect(pushed.find((f) => f['canceled'] === true)).toMatchObject({ watch: 1, canceled: true, code: 'SLOW_CONSUMER', resumeRevision: expect.any(Number) });
      expect(slow.open).toBe(true);
      expect(await until(() => read.filter((f) => Array.isArray(f['events'])).length >= puts, 10_000)).toBe(true);
      expect(read.some((f) => f['canceled'] === true)).toBe(false);
    });
  });

  it('refuses registers past --max-sessions with RESOURCE_EXHAUSTED, never evicting a live session', async () => {
    const live = await a.open(a.leaderUrl);
    const floods = await Promise.all([a.leaderUrl, a.followerUrl, a.quietUrl, a.leaderUrl].map((url) => a.open(url)));
    await a.underAttack('sessions flood', async () => {
      const session = sessionOf(await live.call('register'));
      expect(await live.call('put', { path: '/s/l1', value: b64('1'), client: stamp(session, 1, 0) })).toMatchObject({ ok: true });
      const counted = await a.statusOf(a.leader, 'sessions');
      const before = Number.isNaN(counted) ? 1 : counted; // a server without the count: the live session alone
      const started = clock();
      const results = await Promise.all(floods.map((f) => pipeline(f, 550, LIMIT.inFlightPerConnectionMax, () => ['register', {}], { timeoutMs: 30_000, keep: true })));
      const accepted = results.reduce((n, r) => n + r.ok, 0);
      expect(accepted).toBe(LIMIT.sessionsMax - before);
      const refused = results.flatMap((r) => r.answers.filter((x) => codeOf(x) !== null));
      expect(refused.length).toBe(2_200 - accepted);
      for (const answer of refused) expect(answer).toMatchObject(past('sessionsMax'));
      expect(clock() - started).toBeLessThan(20_000);
      expect(await live.call('put', { path: '/s/l2', value: b64('2'), client: stamp(session, 2, 1) })).toMatchObject({ ok: true });
      expect(await live.call('keepalive', { clientId: session.id, secret: session.secret })).toMatchObject({ ok: true });
    });
  });
});
