/**
 * A flood of each request type against one 3-member cluster at the default limits: 2,000
 * frames pipelined at once on one connection to the leader and 200 on each of 10 connections
 * spread over the members, all at the same time. Answers are kept small (a flood is about
 * requests; the answers of one flood stay well under --max-unread-bytes per connection). Every frame must be answered (nothing lost,
 * no connection closed, no write whose outcome is unknown), and the arena's invariants
 * (arena.ts) must hold over each flood: the canary keeps working, no member's event loop
 * stalls, memory stays bounded, the leader stays, no member exits.
 *
 * Must never: sleep as synchronisation; leave a process, connection or folder behind (the flood
 * connections are closed after the file); use a server module.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arena } from './arena.js';
import { b64, codeOf, Conn, errorOf, pipeline, sessionOf, stamp, type Answer, type Fields, type Session } from './conn.js';

const ONE = 2_000;
const MANY = 10;
const EACH = 200;
const a = arena();
let one: Conn;
let many: Conn[] = [];
let session: Session;
let leases: number[] = [];

/** Per flood: the request for frame `i` of connection `c` (c = -1 for the single connection), and the codes it may answer. */
interface Flood {
  readonly type: string;
  readonly make: (i: number, c: number) => Fields;
  readonly allowed?: readonly string[];
}
/** Unique per frame across the flood: the single connection's frames first, then each of the ten's. */
const n = (i: number, c: number): number => (c < 0 ? i : ONE + c * EACH + i);
const FLOODS: Flood[] = [
  { type: 'status', make: () => ({}) },
  { type: 'register', make: () => ({}) },
  { type: 'keepalive', make: () => ({ clientId: session.id, secret: session.secret }) },
  { type: 'create', make: (i, c) => ({ path: `/flood/c/${n(i, c)}`, value: b64('c'), parents: true }) },
  { type: 'put', make: (i, c) => ({ path: `/flood/p/k${n(i, c) % 100}`, value: b64(`v${n(i, c)}`) }) },
  { type: 'txn', make: (i, c) => ({ compare: [{ path: '/flood/p/k0', target: 'version', operator: '>', operand: -1 }], success: [{ op: 'put', path: `/flood/t/k${n(i, c) % 100}`, value: b64('t') }, { op: 'get', path: '/flood/p/k0' }] }) },
  { type: 'get', make: (i, c) => ({ path: `/flood/p/k${n(i, c) % 100}` }) },
  { type: 'children', make: () => ({ path: '/flood/p' }) },
  { type: 'range', make: () => ({ path: '/flood/p', limit: 10 }) },
  { type: 'delete', make: (i, c) => ({ path: `/flood/c/${n(i, c)}` }) },
  { type: 'compact', make: () => ({ revision: 1 }), allowed: ['COMPACTED', 'INVALID_ARGUMENT'] },
  { type: 'leaseGrant', make: () => ({ ttlMs: 60_000 }) },
  { type: 'leaseKeepAlive', make: (i, c) => ({ leases: leases.slice(n(i, c) % 1_000, (n(i, c) % 1_000) + 10) }) },
  { type: 'leaseTimeToLive', make: (i, c) => ({ lease: leases[n(i, c) % leases.length] }) },
  { type: 'leaseList', make: () => ({ limit: 20 }) },
  { type: 'leaseRevoke', make: (i, c) => ({ lease: leases[n(i, c)] }) },
  { type: 'watch', make: (i, c) => ({ watchId: i + 1, path: `/flood/w/${n(i, c)}`, scope: 'subtree' }) },
  { type: 'watchProgress', make: () => ({}) },
  { type: 'cancelWatch', make: (i) => ({ watchId: i + 1 }) },
  // Each open scans the store and answers up to a megabyte: past one per connection (INVALID_ARGUMENT) and --max-snapshot-streams the rest are refused at once.
  { type: 'snapshot', make: () => ({}), allowed: ['RESOURCE_EXHAUSTED', 'INVALID_ARGUMENT'] },
];

// Any code but those a flood allows fails it: above all an answer lost, a connection closed
// (CLIENT_TIMEOUT, CONNECTION_CLOSED, NOT_SENT) or a write whose outcome is unknown.

beforeAll(async () => {
  one = await Conn.open(a.leaderUrl);
  many = await Promise.all(Array.from({ length: MANY }, (_, c) => Conn.open(a.members[c % a.members.length]!.clientUrl)));
  session = sessionOf(await one.call('register'));
  expect(await one.call('put', { path: '/flood/s', value: b64('s'), client: stamp(session, 1, 0) })).toMatchObject({ ok: true });
});
afterAll(() => {
  for (const conn of [one, ...many]) conn?.terminate();
});

describe('a flood of each request type: 2,000 frames on one connection and 200 on each of ten', () => {
  it.each(FLOODS.map((f) => [f.type, f] as const))('%s', async (type, flood) => {
    const codes: Record<string, number> = {};
    const answers: Answer[] = [];
    await a.underAttack(`flood of ${type}`, async () => {
      const results = await Promise.all([
        pipeline(one, ONE, ONE, (i) => [type, flood.make(i, -1)], { timeoutMs: 30_000, keep: true }),
        ...many.map((conn, c) => pipeline(conn, EACH, EACH, (i) => [type, flood.make(i, c)], { timeoutMs: 30_000, keep: true })),
      ]);
      for (const r of results) {
        answers.push(...r.answers);
        for (const [code, count] of Object.entries(r.codes)) codes[code] = (codes[code] ?? 0) + count;
      }
      if (type === 'leaseGrant') leases = answers.map((x) => Number((x['lease'] as { id?: unknown } | undefined)?.id));
    });
    const unexpected = Object.keys(codes).filter((code) => !(flood.allowed ?? []).includes(code));
    const sample = answers.find((x) => unexpected.includes(codeOf(x) ?? ''));
    expect(unexpected, `codes ${JSON.stringify(codes)}; e.g. ${JSON.stringify(sample === undefined ? null : errorOf(sample))}`).toEqual([]);
    expect([one, ...many].every((conn) => conn.open)).toBe(true);
  });
});
