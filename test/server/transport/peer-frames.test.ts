/**
 * Peer frames checked on arrival (server/transport/peer-frames.ts): every well-formed frame of
 * each kind passes unchanged; any field the receiver reads, given the wrong type or range, is
 * refused; arbitrary values never throw.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validFrame, validMessage } from '../../../server/transport/peer-frames.js';
import type { Message } from '../../../server/raft/types.js';

const env = { from: 'a', to: 'b', term: 3 };
const MESSAGES: Message[] = [
  { type: 'PreVote', ...env, lastLogIndex: 9, lastLogTerm: 2 },
  { type: 'PreVoteResp', ...env, reject: false },
  { type: 'Vote', ...env, lastLogIndex: 9, lastLogTerm: 2, transfer: true },
  { type: 'VoteResp', ...env, reject: true },
  { type: 'Append', ...env, prevLogIndex: 4, prevLogTerm: 1, commit: 4, entries: [{ index: 5, term: 3, type: 'normal', data: new Uint8Array([1, 2]) }, { index: 6, term: 3, type: 'noop', data: new Uint8Array(0) }] },
  { type: 'AppendResp', ...env, reject: false, index: 6, rejectHint: 0, hintTerm: 0 },
  { type: 'Heartbeat', ...env, commit: 6, readRound: null },
  { type: 'HeartbeatResp', ...env, readRound: 12 },
  { type: 'Snapshot', ...env, snapshot: { meta: { index: 100, term: 2, conf: { voters: ['a', 'b', 'c'] } }, data: null } },
  { type: 'TimeoutNow', ...env },
  { type: 'ReadIndex', ...env, requestId: 'r-1' },
  { type: 'ReadIndexResp', ...env, requestId: 'r-1', index: 6 },
];

const FRAMES: Record<string, unknown>[] = [
  { k: 'hello', from: 'a', clientUrl: 'ws://a', cluster: '0123456789abcdef' },
  ...MESSAGES.map((m) => ({ k: 'raft', m })),
  { k: 'fwd', id: 1, entry: new Uint8Array([1]) },
  { k: 'fwd-ok', id: 1, result: { ok: true, revision: 4, op: 'put' } },
  { k: 'fwd-err', id: 1, code: 'NOT_LEADER', message: 'no', leader: 'c' },
  { k: 'lease', id: 2, request: { op: 'keepAlive', leases: [1, 2] } },
  { k: 'lease', id: 2, request: { op: 'timeToLive', lease: 7 } },
  { k: 'lease-ok', id: 2, answers: [{ ok: true, id: 1, ttlMs: 5000, remainingMs: 4000 }] },
  { k: 'snap', id: 3, m: MESSAGES[8] },
  { k: 'snap-chunk', id: 3, chunk: new Uint8Array([9]) },
  { k: 'snap-end', id: 3 },
];

/** Values no field of a frame may take in place of its own. */
const WRONG = [undefined, null, -1, 1.5, 'x', true, [], {}, new Uint8Array(1), Number.MAX_SAFE_INTEGER + 2];

describe('peer frames', () => {
  it('pass every well-formed frame of each kind, as it is', () => {
    for (const frame of FRAMES) expect(validFrame(frame), JSON.stringify(frame)).toBe(frame);
    for (const m of MESSAGES) expect(validMessage(m)).toBe(m);
  });

  it('refuse a frame when any one field it carries is replaced by a value of the wrong type or range', () => {
    let refused = 0;
    for (const frame of FRAMES) {
      const paths: string[][] = [];
      const walk = (value: unknown, path: string[]): void => {
        if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return;
        for (const [key, inner] of Object.entries(value)) {
          if (path.length === 0 && key === 'k') continue;
          paths.push([...path, key]);
          walk(inner, [...path, key]);
        }
      };
      walk(frame, []);
      for (const path of paths) {
        for (const wrong of WRONG) {
          const copy = structuredClone(frame) as Record<string, unknown>;
          let at: Record<string, unknown> = copy;
          for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
          const last = path[path.length - 1]!;
          const original = at[last];
          // The same kind of value is no mutation (a count for a count, bytes for bytes): skip those.
          if (typeof original === typeof wrong && Array.isArray(original) === Array.isArray(wrong) && (original instanceof Uint8Array) === (wrong instanceof Uint8Array) && !(typeof wrong === 'number' && !Number.isSafeInteger(wrong)) && wrong !== -1 && wrong !== null) continue;
          if (original === null && wrong === null) continue;
          // Fields whose value may be of several kinds.
          if (path.join('.') === 'result.op' || (path[0] === 'result' && path.length > 1 && path[1] !== 'ok' && path[1] !== 'revision')) continue;
          if (path[0] === 'answers' && path.length > 2 && path[2] !== 'ok') continue;
          if (last === 'readRound' && (wrong === null || (typeof wrong === 'number' && Number.isSafeInteger(wrong) && wrong >= 0))) continue;
          if (last === 'data' && path.includes('snapshot') && (wrong === null || wrong instanceof Uint8Array)) continue;
          if (last === 'cluster' && wrong === undefined) continue;
          if (last === 'revision' && path[0] === 'result' && wrong === undefined) continue;
          if (Array.isArray(original) && Array.isArray(wrong) && wrong.length === 0) continue;
          if (last === 'leader' && wrong === null) continue;
          if (typeof original === 'string' && typeof wrong === 'string' && !['code', 'type', 'op'].includes(last)) continue;
          at[last] = wrong;
          expect(validFrame(copy), `${String(copy['k'])}: ${path.join('.')} = ${String(wrong)}`).toBeNull();
          refused += 1;
        }
      }
    }
    expect(refused).toBeGreaterThan(300);
  });

  it("refuse a Snapshot claiming to be staged: a stage is the receiver's own, and the core would install it without bytes", () => {
    const snapshot = MESSAGES[8] as Extract<Message, { type: 'Snapshot' }>;
    const claimed = { ...snapshot, snapshot: { ...snapshot.snapshot, staged: true } };
    expect(validMessage(claimed)).toBeNull();
    expect(validFrame({ k: 'snap', id: 3, m: claimed })).toBeNull();
    expect(validFrame({ k: 'raft', m: claimed })).toBeNull();
  });

  it('never throw, whatever arrives', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withNullPrototype: true, withMap: true }), (value) => {
        expect(() => validFrame(value)).not.toThrow();
        expect(() => validFrame({ k: 'raft', m: value })).not.toThrow();
        expect(validFrame({ k: 'raft', m: value })).toBeNull();
      }),
      { numRuns: 2_000 },
    );
  });
});
