/**
 * Clients that stop reading (issue 11, case 6), on a cluster of their own (they leave a member's
 * memory higher than they found it): ten connections to the leader pause their sockets and each
 * pipelines gets of a 1 MiB node. The member must cut each — drop it (1006: a close and its
 * reason would sit behind megabytes the client does not read), logging the limit it passed
 * (--max-unread-bytes per connection, --max-member-unread-bytes for the member) — without
 * buffering their answers: its RSS stays under the arena's bound (arena.ts), and the canary, the
 * probes and the leadership are as the arena requires meanwhile.
 *
 * Must never: sleep as synchronisation (the paused sockets resume once the member's log says it
 * cut them, with a bound); leave a process, connection or folder behind; use a server module.
 */

import { describe, expect, it } from 'vitest';
import { arena } from './arena.js';
import { MiB, until, valueOf } from './conn.js';

const CONNECTIONS = 10;
const GETS_PER_CONNECTION = 30;
const a = arena();

describe('clients that stop reading', () => {
  it(`closes ${CONNECTIONS} connections that pipeline gets of a 1 MiB node and read nothing, naming the limit; memory stays bounded`, async () => {
    const writer = await a.open(a.leaderUrl);
    expect(await writer.call('put', { path: '/big1', value: valueOf(MiB) })).toMatchObject({ ok: true });
    const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => a.open(a.leaderUrl, { maxPayload: 64 * MiB })));
    let answers = 0;
    await a.underAttack('ten unread connections', async () => {
      const mark = a.logMark(a.leader);
      for (const conn of conns) {
        conn.onFrame = () => void (answers += 1);
        conn.tcp.pause();
        for (let i = 0; i < GETS_PER_CONNECTION; i++) conn.fire('get', { path: '/big1' });
      }
      // A close waits behind the unread answers; the member's log says when it cut each connection.
      const cut = await until(() => a.cluster.member(a.leader).logs.slice(mark).filter((l) => l.includes('client_cut')).length >= CONNECTIONS, 30_000);
      for (const conn of conns) conn.tcp.resume();
      expect(cut, 'a client_cut log line per connection').toBe(true);
      expect(await until(() => conns.every((c) => c.closed !== null), 30_000)).toBe(true);
      const cuts = a.cluster.member(a.leader).logs.slice(mark).filter((l) => l.includes('client_cut'));
      for (const line of cuts) expect(line).toMatch(/"reason":"(unread|member_unread)"/);
      for (const conn of conns) {
        expect([1008, 1006]).toContain(conn.closed?.code);
        if (conn.closed?.code === 1008) expect(conn.closed.reason).toMatch(/--max-unread-bytes|--max-member-unread-bytes/);
      }
      expect(answers).toBeLessThan(CONNECTIONS * GETS_PER_CONNECTION);
      expect(await writer.call('get', { path: '/big1' })).toMatchObject({ ok: true });
    });
  });
});
