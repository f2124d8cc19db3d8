/**
 * Every bounded field of every request type, at its bound (accepted) and one past it (refused
 * with the right code and, for a limit with a flag, `limit: {name, flag, value}` naming it),
 * table-driven against one 3-member cluster. Count limits run with small flags so their bounds
 * are cheap to reach (FLAGS); sizes run at their defaults (1 MiB values, 4,096-byte paths,
 * 128 txn ops) except the answer bound (1.5 MiB here, the least that holds one node of a 1 MiB
 * value — a member refuses to start with less — so a transaction of two gets passes it). The arena's
 * invariants (arena.ts) are checked over the whole table at its end.
 *
 * Must never: sleep as synchronisation; leave a process, connection or folder behind; use a
 * server module (the wire protocol, and shared/'s own size arithmetic for the answer bound).
 */

import { describe, expect, it } from 'vitest';
import { nodeWireBytes } from '../../shared/wire-size.js';
import { arena } from './arena.js';
import { b64, clock, codeOf, MiB, sessionOf, valueOf, type Answer, type Conn } from './conn.js';

const ANSWER_MAX = 1.5 * MiB;
const FLAGS = ['--max-answer-bytes', String(ANSWER_MAX)];
const a = arena({ flags: FLAGS });
let conn: Conn;
let from = 0;

/** The `limit` an error frame must carry for a flag limit. */
const LIMITS = {
  valueBytesMax: { name: 'valueBytesMax', flag: '--max-value-bytes', value: MiB },
  pathBytesMax: { name: 'pathBytesMax', flag: '--max-path-bytes', value: 4096 },
  txnOpsMax: { name: 'txnOpsMax', flag: '--max-txn-ops', value: 128 },
  answerBytesMax: { name: 'answerBytesMax', flag: '--max-answer-bytes', value: ANSWER_MAX },
} as const;

type Call = () => Promise<Answer>;
interface Row {
  readonly field: string;
  readonly at: Call;
  /** What the answer at the bound must match (default: ok). */
  readonly atMatches?: Record<string, unknown>;
  readonly past: Call;
  readonly code: string;
  readonly limit?: keyof typeof LIMITS;
  /** Also accepted past the bound: INVALID_ARGUMENT (reads of an over-long path are malformed paths). */
  readonly orInvalid?: boolean;
}

const P_AT = `/${'p'.repeat(4095)}`; // 4,096 bytes
const P_PAST = `/${'p'.repeat(4096)}`;
const P_AT_UTF8 = `/${'é'.repeat(2047)}x`; // 1 + 4,094 + 1 bytes
const P_PAST_UTF8 = `/${'é'.repeat(2048)}`;
const SEQ_AT = `/${'s'.repeat(4085)}`; // + 10 digits = 4,096 bytes
const SEQ_PAST = `/${'s'.repeat(4086)}`;
const V_AT = valueOf(MiB);
const V_PAST = valueOf(MiB + 1);
/** The largest value whose node at `path` fits `bytes` of answer, as the protocol counts it (shared/wire-size). */
function valueFitting(path: string, bytes: number): number {
  let v = 3 * Math.floor((bytes - nodeWireBytes({ path, value: new Uint8Array(0) })) / 4);
  while (nodeWireBytes({ path, value: new Uint8Array(v + 1) }) <= bytes) v += 1;
  return v;
}
const get = (path: string): { op: string; path: string } => ({ op: 'get', path });
const put = (path: string, value = b64('x')): Record<string, unknown> => ({ op: 'put', path, value });
const ops = (n: number, make: (i: number) => Record<string, unknown>): Record<string, unknown>[] => Array.from({ length: n }, (_, i) => make(i));
const cmp = (n: number): Record<string, unknown>[] => ops(n, () => ({ path: '/f', target: 'exists', operator: '=', operand: true }));
const c = (type: string, fields: Record<string, unknown>): Call => () => conn.call(type, fields, 30_000);
const raw = (text: string): Call => async () => (await conn.raw(text)) ?? { ok: false, error: { code: 'NO_ANSWER' } };

const ROWS: Row[] = [
  // The envelope.
  { field: 'id: a string of 128 characters', at: raw(JSON.stringify({ id: 'i'.repeat(128), type: 'status' })), atMatches: { ok: true, id: 'i'.repeat(128) }, past: raw(JSON.stringify({ id: 'i'.repeat(129), type: 'status' })), code: 'INVALID_ARGUMENT' },
  { field: 'id: a safe integer', at: raw(`{"id":${Number.MAX_SAFE_INTEGER},"type":"status"}`), atMatches: { ok: true, id: Number.MAX_SAFE_INTEGER }, past: raw('{"id":9007199254740992,"type":"status"}'), code: 'INVALID_ARGUMENT' },
  // register and keepalive.
  { field: 'register nonce: 64 characters', at: c('register', { nonce: 'n'.repeat(64) }), past: c('register', { nonce: 'n'.repeat(65) }), code: 'INVALID_ARGUMENT' },
  { field: 'register nonce: 16 characters', at: c('register', { nonce: 'm'.repeat(16) }), past: c('register', { nonce: 'm'.repeat(15) }), code: 'INVALID_ARGUMENT' },
  // Paths (writes: TOO_LARGE naming the limit, before anything is proposed).
  { field: 'create path: 4,096 bytes', at: c('create', { path: P_AT }), past: c('create', { path: P_PAST }), code: 'TOO_LARGE', limit: 'pathBytesMax' },
  { field: 'create path: 4,096 bytes of UTF-8', at: c('create', { path: P_AT_UTF8 }), past: c('create', { path: P_PAST_UTF8 }), code: 'TOO_LARGE', limit: 'pathBytesMax' },
  { field: 'create sequential base: 4,086 bytes + 10 digits', at: c('create', { path: SEQ_AT, sequential: true }), past: c('create', { path: SEQ_PAST, sequential: true }), code: 'TOO_LARGE', limit: 'pathBytesMax' },
  { field: 'put path', at: c('put', { path: P_AT, value: b64('v') }), past: c('put', { path: P_PAST, value: b64('v') }), code: 'TOO_LARGE', limit: 'pathBytesMax' },
  { field: 'delete path', at: c('delete', { path: P_AT_UTF8 }), past: c('delete', { path: P_PAST }), code: 'TOO_LARGE', limit: 'pathBytesMax' },
  { field: 'txn op path', at: c('txn', { success: [put(P_AT)] }), past: c('txn', { success: [put(P_PAST)] }), code: 'TOO_LARGE', limit: 'pathBytesMax' },
  { field: 'txn compare path', at: c('txn', { compare: [{ path: P_AT, target: 'version', operator: '>', operand: -1 }] }), past: c('txn', { compare: [{ path: P_PAST, target: 'version', operator: '>', operand: -1 }] }), code: 'TOO_LARGE', limit: 'pathBytesMax' },
  { field: 'get path', at: c('get', { path: P_AT }), past: c('get', { path: P_PAST }), code: 'TOO_LARGE', limit: 'pathBytesMax', orInvalid: true },
  { field: 'children path', at: c('children', { path: P_AT }), past: c('children', { path: P_PAST }), code: 'TOO_LARGE', limit: 'pathBytesMax', orInvalid: true },
  { field: 'range path', at: c('range', { path: P_AT, limit: 1 }), past: c('range', { path: P_PAST, limit: 1 }), code: 'TOO_LARGE', limit: 'pathBytesMax', orInvalid: true },
  { field: 'watch path', at: c('watch', { watchId: 7, path: P_AT }), past: c('watch', { watchId: 8, path: P_PAST }), code: 'TOO_LARGE', limit: 'pathBytesMax', orInvalid: true },
  // Values and value compare operands.
  { field: 'create value: 1 MiB', at: c('create', { path: '/f/v-create', value: V_AT }), past: c('create', { path: '/f/v-create2', value: V_PAST }), code: 'TOO_LARGE', limit: 'valueBytesMax' },
  { field: 'put value: 1 MiB', at: c('put', { path: '/f/v-put', value: V_AT }), past: c('put', { path: '/f/v-put', value: V_PAST }), code: 'TOO_LARGE', limit: 'valueBytesMax' },
  { field: 'txn put value: 1 MiB', at: c('txn', { success: [put('/f/v-txn', V_AT)] }), past: c('txn', { success: [put('/f/v-txn', V_PAST)] }), code: 'TOO_LARGE', limit: 'valueBytesMax' },
  { field: 'txn create value (failure branch): 1 MiB', at: c('txn', { compare: cmp(1).map((x) => ({ ...x, operand: false })), failure: [{ op: 'create', path: '/f/v-txnc', value: V_AT }] }), past: c('txn', { failure: [{ op: 'create', path: '/f/v-txnc2', value: V_PAST }] }), code: 'TOO_LARGE', limit: 'valueBytesMax' },
  { field: 'txn compare operand: 1 MiB', at: c('txn', { compare: [{ path: '/f/v-put', target: 'value', operator: '=', operand: V_AT }] }), past: c('txn', { compare: [{ path: '/f/v-put', target: 'value', operator: '=', operand: V_PAST }] }), code: 'TOO_LARGE', limit: 'valueBytesMax' },
  // Transaction sizes.
  { field: 'txn compares: 128', at: c('txn', { compare: cmp(128) }), past: c('txn', { compare: cmp(129) }), code: 'TOO_LARGE', limit: 'txnOpsMax' },
  { field: 'txn success ops: 128', at: c('txn', { success: ops(128, (i) => put(`/f/ops/s${i}`)) }), past: c('txn', { success: ops(129, (i) => put(`/f/ops/t${i}`)) }), code: 'TOO_LARGE', limit: 'txnOpsMax' },
  { field: 'txn failure ops: 128', at: c('txn', { compare: cmp(1).map((x) => ({ ...x, operand: false })), failure: ops(128, (i) => put(`/f/ops/f${i}`)) }), past: c('txn', { failure: ops(129, (i) => put(`/f/ops/g${i}`)) }), code: 'TOO_LARGE', limit: 'txnOpsMax' },
  // Answers.
  { field: 'txn gets: answers adding up to the bound', at: c('txn', { success: [get('/f/ans/half'), get('/f/ans/half')] }), past: c('txn', { success: [get('/f/ans/half'), get('/f/ans/half'), get('/f/ans/half'), put('/f/ans/applied')] }), code: 'TOO_LARGE', limit: 'answerBytesMax' },
  { field: 'children without a limit: names past the answer bound', at: c('children', { path: '/f/names', limit: 100_000 }), atMatches: { ok: true, next: expect.any(String) }, past: c('children', { path: '/f/names' }), code: 'TOO_LARGE', limit: 'answerBytesMax' },
  { field: 'children limit: 100,000', at: c('children', { path: '/f', limit: 100_000 }), past: c('children', { path: '/f', limit: 100_001 }), code: 'INVALID_ARGUMENT' },
  { field: 'children after: 4,096 characters', at: c('children', { path: '/f', after: 'a'.repeat(4096) }), past: c('children', { path: '/f', after: 'a'.repeat(4097) }), code: 'INVALID_ARGUMENT' },
  { field: 'range limit: 10,000 (a page ends at the answer bound, with next)', at: c('range', { path: '/f/names', limit: 10_000 }), atMatches: { ok: true, next: expect.any(String) }, past: c('range', { path: '/f/names', limit: 10_001 }), code: 'INVALID_ARGUMENT' },
  // Leases.
  { field: 'leaseGrant ttlMs: at least twice the election timeout (4 s)', at: c('leaseGrant', { ttlMs: 4_000 }), past: c('leaseGrant', { ttlMs: 3_999 }), code: 'INVALID_ARGUMENT' },
  { field: 'leaseGrant ttlMs: at most 24 h', at: c('leaseGrant', { ttlMs: 86_400_000 }), past: c('leaseGrant', { ttlMs: 86_400_001 }), code: 'INVALID_ARGUMENT' },
  { field: 'leaseGrant lease: a safe integer id', at: c('leaseGrant', { ttlMs: 60_000, lease: Number.MAX_SAFE_INTEGER }), past: c('leaseGrant', { ttlMs: 60_000, lease: 2 ** 53 }), code: 'INVALID_ARGUMENT' },
  { field: 'leaseKeepAlive leases: 10,000 ids', at: c('leaseKeepAlive', { leases: Array.from({ length: 10_000 }, (_, i) => i + 1) }), past: c('leaseKeepAlive', { leases: Array.from({ length: 10_001 }, (_, i) => i + 1) }), code: 'INVALID_ARGUMENT' },
  { field: 'leaseList limit: 10,000', at: c('leaseList', { limit: 10_000 }), past: c('leaseList', { limit: 10_001 }), code: 'INVALID_ARGUMENT' },
  // Watches.
  { field: 'watch watchId: 2^31 - 1', at: c('watch', { watchId: 2 ** 31 - 1, path: '/f' }), past: c('watch', { watchId: 2 ** 31, path: '/f' }), code: 'INVALID_ARGUMENT' },
];

describe('every bounded field at its bound and one past it', () => {
  it('sets up what the table reads (not part of the table)', async () => {
    conn = await a.open(a.leaderUrl, { maxPayload: 64 * MiB });
    const must = async (type: string, fields: Record<string, unknown>): Promise<void> => expect(await conn.call(type, fields), `${type} ${String(fields['path'])}`).toMatchObject({ ok: true });
    await must('put', { path: '/f', value: b64('f') });
    await must('put', { path: '/f/ans/half', value: valueOf(valueFitting('/f/ans/half', ANSWER_MAX / 2)) });
    // 500 children whose names alone (3,500 bytes each) are past the answer bound.
    await must('put', { path: '/f/names' });
    // (50 a write: their paths' bytes fit --max-write-path-bytes.)
    for (let k = 0; k < 10; k++) await must('txn', { success: ops(50, (i) => ({ op: 'create', path: `/f/names/${String(k * 50 + i).padStart(4, '0')}${'n'.repeat(3_496)}` })) });
    a.closeConnections();
    conn = await a.open(a.leaderUrl, { maxPayload: 64 * MiB });
    from = clock();
  });

  it.each(ROWS.map((row) => [row.field, row] as const))('%s', async (_field, row) => {
    conn ??= await a.open(a.leaderUrl, { maxPayload: 64 * MiB });
    if (!conn.open) conn = await a.open(a.leaderUrl, { maxPayload: 64 * MiB });
    const at = await row.at();
    expect(at, 'at the bound').toMatchObject(row.atMatches ?? { ok: true });
    const past = await row.past();
    const code = codeOf(past);
    if (row.orInvalid === true && code === 'INVALID_ARGUMENT') return;
    expect(past, 'past the bound').toMatchObject({ ok: false, error: { code: row.code, outcome: 'final', ...(row.limit === undefined ? {} : { limit: LIMITS[row.limit] }) } });
    if (row.limit === undefined) expect((past['error'] as Record<string, unknown>)['limit']).toBeUndefined();
    if (String(row.field).startsWith('id')) expect(past['id']).toBeNull();
  });

  it('applied nothing refused: no node of a refused write exists', async () => {
    conn = await a.open(a.leaderUrl);
    for (const path of ['/f/v-create2', '/f/v-txnc2', '/f/ops/t0', '/f/ops/g0', '/f/ans/applied']) expect(codeOf(await conn.call('get', { path })), path).toBe('NO_NODE');
    // The put past the bound did not land: /f/v-put is still at version 0 (a compare: its get would pass the answer bound).
    expect(await conn.call('txn', { compare: [{ path: '/f/v-put', target: 'version', operator: '=', operand: 0 }] })).toMatchObject({ ok: true, succeeded: true });
  });

  it('retries a register with its nonce and a grant with its lease id idempotently', async () => {
    conn = await a.open(a.leaderUrl);
    const nonce = 'retry-nonce-0123456789';
    const first = sessionOf(await conn.call('register', { nonce }));
    expect(sessionOf(await conn.call('register', { nonce }))).toEqual(first);
    expect(first.secret).toMatch(/^[0-9a-f]{32}$/);
    expect(await conn.call('keepalive', { clientId: first.id, secret: first.secret })).toMatchObject({ ok: true });
    expect(await conn.call('keepalive', { clientId: first.id, secret: 'f'.repeat(32) })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED', outcome: 'final' } });
    expect(await conn.call('keepalive', { clientId: first.id, secret: 'f'.repeat(31) })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await conn.call('leaseGrant', { ttlMs: 60_000, lease: 4242 })).toMatchObject({ ok: true });
    expect(await conn.call('leaseGrant', { ttlMs: 60_000, lease: 4242 })).toMatchObject({ ok: true, existing: true });
  });

  it('held the invariants over the whole table', async () => {
    expect(from).toBeGreaterThan(0);
    const report = await a.check('bounded fields table', from);
    expect(report.violations).toEqual([]);
  });
});
