/**
 * Client sessions (Idempotent Receiver, Raft thesis §6.3): each client registers once, numbers
 * its writes, and a write whose (clientId, seq) was already applied answers its recorded result
 * instead of applying again — so a retry after a lost answer is exactly-once.
 *
 * A session is owned: `register` hands out a secret (128 random bits, drawn by the proposing
 * member and carried in the log) that every stamped write must carry; a stamp with another
 * secret is refused and changes nothing. A register retried with the same nonce answers the
 * same session. The table is bounded: a full one refuses new sessions (a live session is never
 * evicted); sessions idle for the session TTL (in log time) expire, least recently active first.
 *
 * Answers are bounded per session: a client says which it has received (ackedThrough: the
 * contiguous prefix of its seqs it has answers for, abandoned seqs counted as received) and
 * those are dropped; past RESULTS_PER_SESSION_MAX unacknowledged answers the oldest is dropped.
 * A write whose answer was dropped either way can no longer be told apart from a retry: it is
 * refused OUTCOME_UNKNOWN, never applied (again). Recorded answers keep paths and stats, not
 * values, so they cost what the client wrote, not what it read.
 *
 * Must never: read a clock or randomness; apply a recorded (clientId, seq) twice, or any seq at
 * or below one whose answer was dropped; order anything by something other than the replicated
 * apply order (a Map's insertion order is that order).
 */

import type { ErrorCode } from '../../shared/errors.js';
import type { ChangeTracker } from './changes.js';

export const SESSION_TTL_MS_DEFAULT = 60_000;
export const SESSIONS_MAX_DEFAULT = 100_000;
export const RESULTS_PER_SESSION_MAX = 1_024;
/** A session secret: 128 bits as 32 lowercase hex digits. */
export const SESSION_SECRET_PATTERN = /^[0-9a-f]{32}$/;

export interface ClientStamp {
  readonly id: number;
  /** This request's number; a client numbers its writes 1, 2, 3… */
  readonly seq: number;
  /** The client has every answer up to this seq (or gave up on it): those may be forgotten. */
  readonly ackedThrough: number;
  /** The secret `register` answered: proves the stamp is the session owner's. */
  readonly secret: string;
}

interface Session {
  readonly secret: string;
  /** The user that registered it (auth enabled), else absent: only that user may stamp with it. */
  readonly owner?: string;
  readonly nonce: string | null;
  lastActiveMs: number;
  /** When it was last active in apply order (a counter): restores the least-recently-active order. */
  lastActivity: number;
  ackedThrough: number;
  /** The highest seq whose answer was dropped past the bound: at or below it, outcomes are unknown. */
  forgottenThrough: number;
  /** Recorded answers by seq, for seqs above ackedThrough. */
  readonly results: Map<number, unknown>;
}

/** A session without its recorded answers, as a state store keeps it. */
export interface SessionHeader {
  readonly id: number;
  readonly secret: string;
  readonly owner?: string;
  readonly nonce: string | null;
  readonly lastActiveMs: number;
  readonly lastActivity: number;
  readonly ackedThrough: number;
  readonly forgottenThrough: number;
}

/** A session as a state store holds it. */
export interface SessionRecord extends SessionHeader {
  readonly results: readonly (readonly [seq: number, result: unknown])[];
}

export type Admission =
  | { readonly kind: 'new' }
  | { readonly kind: 'repeat'; readonly result: unknown }
  | { readonly kind: 'refused'; readonly code: ErrorCode; readonly message: string };

export type Registration =
  | { readonly ok: true; readonly id: number; readonly secret: string; readonly existing: boolean }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export class SessionTable {
  /** In least-recently-active order: activity re-inserts a session at the end. */
  private readonly sessions = new Map<number, Session>();
  /** Live sessions by the nonce they registered with. */
  private readonly byNonce = new Map<string, number>();
  private nextId = 1;
  private activity = 0;

  /** `changes` records which sessions and recorded answers changed, for the state store. */
  constructor(
    private readonly ttlMs = SESSION_TTL_MS_DEFAULT,
    private readonly sessionsMax = SESSIONS_MAX_DEFAULT,
    private readonly changes: ChangeTracker | null = null,
    /** Unacknowledged answers kept per session (every member must use the same: it decides OUTCOME_UNKNOWN). */
    private readonly resultsMax = RESULTS_PER_SESSION_MAX,
  ) {}

  /** A table rebuilt from what a state store held. */
  static restore(
    image: { readonly nextId: number; readonly activity: number; readonly sessions: Iterable<SessionRecord> },
    ttlMs = SESSION_TTL_MS_DEFAULT,
    sessionsMax = SESSIONS_MAX_DEFAULT,
    changes: ChangeTracker | null = null,
    resultsMax = RESULTS_PER_SESSION_MAX,
  ): SessionTable {
    const table = new SessionTable(ttlMs, sessionsMax, changes, resultsMax);
    const records = [...image.sessions].sort((a, b) => a.lastActivity - b.lastActivity);
    for (const r of records) {
      table.sessions.set(r.id, {
        secret: r.secret,
        ...(r.owner === undefined ? {} : { owner: r.owner }),
        nonce: r.nonce,
        lastActiveMs: r.lastActiveMs,
        lastActivity: r.lastActivity,
        ackedThrough: r.ackedThrough,
        forgottenThrough: r.forgottenThrough,
        results: new Map(r.results),
      });
      if (r.nonce !== null) table.byNonce.set(r.nonce, r.id);
    }
    table.nextId = image.nextId;
    table.activity = image.activity;
    return table;
  }

  /** The counters a state store keeps beside the sessions. */
  get counters(): { readonly nextId: number; readonly activity: number } {
    return { nextId: this.nextId, activity: this.activity };
  }

  /** A session as the state store writes it (its answers apart), or undefined if it is gone. */
  header(id: number): SessionHeader | undefined {
    const s = this.sessions.get(id);
    if (s === undefined) return undefined;
    return { id, secret: s.secret, ...(s.owner === undefined ? {} : { owner: s.owner }), nonce: s.nonce, lastActiveMs: s.lastActiveMs, lastActivity: s.lastActivity, ackedThrough: s.ackedThrough, forgottenThrough: s.forgottenThrough };
  }

  /** A recorded answer, or undefined if it was dropped (or its session is gone). */
  recordedResult(id: number, seq: number): unknown {
    return this.sessions.get(id)?.results.get(seq);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** The user a live session belongs to (undefined: registered while auth was off, or no such session). */
  owner(id: number): string | undefined {
    return this.sessions.get(id)?.owner;
  }

  /**
   * A new session with `secret` (drawn by the proposer), or the live session registered with
   * `nonce` before (a retried register). Refused RESOURCE_EXHAUSTED when `sessionsMax` (the
   * proposer's bound, else the table's) sessions are live.
   */
  register(nowMs: number, secret: string, nonce: string | null, sessionsMax?: number, owner?: string): Registration {
    if (nonce !== null) {
      const id = this.byNonce.get(nonce);
      const session = id === undefined ? undefined : this.sessions.get(id);
      if (id !== undefined && session !== undefined && session.owner === owner) {
        this.touch(id, session, nowMs);
        return { ok: true, id, secret: session.secret, existing: true };
      }
    }
    const max = Math.min(sessionsMax ?? this.sessionsMax, this.sessionsMax);
    if (this.sessions.size >= max) {
      return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `${this.sessions.size} client sessions are live, the most this cluster keeps (${max}); idle ones expire after ${this.ttlMs} ms` };
    }
    const id = this.nextId++;
    this.sessions.set(id, { secret, ...(owner === undefined ? {} : { owner }), nonce, lastActiveMs: nowMs, lastActivity: ++this.activity, ackedThrough: 0, forgottenThrough: 0, results: new Map() });
    if (nonce !== null) this.byNonce.set(nonce, id);
    this.changes?.sessions.add(id);
    return { ok: true, id, secret, existing: false };
  }

  /** Drop sessions idle longer than the TTL at log time `nowMs` (front of the LRU order first). */
  expire(nowMs: number): void {
    for (const [id, session] of this.sessions) {
      if (session.lastActiveMs + this.ttlMs > nowMs) return;
      this.drop(id);
    }
  }

  /** Decide what to do with a stamped write: apply it, answer a recorded result, or refuse. */
  admit(stamp: unknown, nowMs: number): Admission {
    if (!isStamp(stamp)) return { kind: 'refused', code: 'INVALID_ARGUMENT', message: 'client must be { id, seq, ackedThrough, secret } with seq > ackedThrough >= 0' };
    const session = this.sessions.get(stamp.id);
    if (session === undefined) return { kind: 'refused', code: 'SESSION_EXPIRED', message: `client session ${stamp.id} is unknown or expired` };
    // Not the owner's: refused before anything about the session moves (its seqs, its answers, its age).
    if (stamp.secret !== session.secret) return { kind: 'refused', code: 'UNAUTHENTICATED', message: `the stamp does not carry client session ${stamp.id}'s secret` };
    this.touch(stamp.id, session, nowMs);
    if (stamp.ackedThrough > session.ackedThrough) {
      session.ackedThrough = stamp.ackedThrough;
      for (const seq of session.results.keys()) {
        if (seq > stamp.ackedThrough) continue;
        session.results.delete(seq);
        this.changes?.result(stamp.id, seq);
      }
    }
    if (session.results.has(stamp.seq)) return { kind: 'repeat', result: session.results.get(stamp.seq) };
    if (stamp.seq <= session.ackedThrough || stamp.seq <= session.forgottenThrough) {
      const why = stamp.seq <= session.ackedThrough ? `seq ${stamp.seq} was acknowledged (ackedThrough ${session.ackedThrough})` : `answers through seq ${session.forgottenThrough} were dropped past the ${this.resultsMax} kept unacknowledged`;
      return { kind: 'refused', code: 'OUTCOME_UNKNOWN', message: `${why}: whether seq ${stamp.seq} was applied can no longer be told, so it is not applied now` };
    }
    return { kind: 'new' };
  }

  /** Record the answer to an admitted write (as `recordable` made it), so a retry gets the same one. */
  recordResult(stamp: ClientStamp, result: unknown): void {
    const session = this.sessions.get(stamp.id);
    if (session === undefined) return;
    session.results.set(stamp.seq, result);
    this.changes?.result(stamp.id, stamp.seq);
    if (session.results.size > this.resultsMax) {
      // A client this far ahead of its acknowledgements loses the oldest answer it has not acked;
      // that seq, and any below it, can no longer be told from a retry.
      let oldest = Number.POSITIVE_INFINITY;
      for (const seq of session.results.keys()) oldest = Math.min(oldest, seq);
      session.results.delete(oldest);
      session.forgottenThrough = Math.max(session.forgottenThrough, oldest);
      this.changes?.result(stamp.id, oldest);
    }
  }

  /** Keep a session alive with no write (a client that only reads or waits). */
  keepAlive(id: number, secret: string, nowMs: number): 'ok' | 'expired' | 'unauthenticated' {
    const session = this.sessions.get(id);
    if (session === undefined) return 'expired';
    if (session.secret !== secret) return 'unauthenticated';
    this.touch(id, session, nowMs);
    return 'ok';
  }

  /** Every session with its recorded answers, in least-recently-active order (for a full store write). */
  records(): SessionRecord[] {
    return [...this.sessions].map(([id, s]) => ({ ...this.header(id)!, results: [...s.results] }));
  }

  dump(): { nextId: number; sessions: { id: number; lastActiveMs: number; ackedThrough: number; forgottenThrough: number; seqs: number[] }[] } {
    return {
      nextId: this.nextId,
      sessions: [...this.sessions].map(([id, s]) => ({ id, lastActiveMs: s.lastActiveMs, ackedThrough: s.ackedThrough, forgottenThrough: s.forgottenThrough, seqs: [...s.results.keys()].sort((a, b) => a - b) })),
    };
  }

  private touch(id: number, session: Session, nowMs: number): void {
    session.lastActiveMs = Math.max(session.lastActiveMs, nowMs);
    session.lastActivity = ++this.activity;
    this.sessions.delete(id);
    this.sessions.set(id, session);
    this.changes?.sessions.add(id);
  }

  private drop(id: number): void {
    const session = this.sessions.get(id)!;
    this.sessions.delete(id);
    if (session.nonce !== null && this.byNonce.get(session.nonce) === id) this.byNonce.delete(session.nonce);
    if (this.changes === null) return;
    this.changes.sessions.add(id);
    for (const seq of session.results.keys()) this.changes.result(id, seq);
  }
}

function isStamp(value: unknown): value is ClientStamp {
  if (typeof value !== 'object' || value === null) return false;
  const { id, seq, ackedThrough, secret } = value as Record<string, unknown>;
  return (
    Number.isSafeInteger(id) &&
    Number.isSafeInteger(seq) &&
    Number.isSafeInteger(ackedThrough) &&
    (ackedThrough as number) >= 0 &&
    (seq as number) > (ackedThrough as number) &&
    typeof secret === 'string'
  );
}

/**
 * An answer as a session records it: stats and counts, never a node's value, and no path the
 * client sent itself (the answer first sent had them; a retry gets the record). A create keeps
 * the path it made (a sequential name is news to the client) — as long as the node it names, so
 * records grow with what a client creates, not with what it reads or overwrites.
 */
export function recordable(result: unknown): unknown {
  if (typeof result !== 'object' || result === null) return result;
  const r = result as Record<string, unknown>;
  if (r['ok'] !== true) return result;
  const out: Record<string, unknown> = { ...r };
  const keepPath = r['op'] === 'create';
  if (isNode(r['node'])) out['node'] = statOnly(r['node'], keepPath);
  if (isNode(r['prevNode'])) out['prevNode'] = statOnly(r['prevNode'], false);
  if (Array.isArray(r['results'])) out['results'] = (r['results'] as unknown[]).map((op) => recordable({ ok: true, ...(op as Record<string, unknown>) })).map((op) => {
    const { ok: _ok, ...rest } = op as Record<string, unknown>;
    return rest;
  });
  return out;
}

function isNode(value: unknown): value is { path: string; stat: unknown } {
  return typeof value === 'object' && value !== null && 'path' in value && 'stat' in value;
}

function statOnly(node: { path: string; stat: unknown }, keepPath: boolean): { path?: string; stat: unknown } {
  return keepPath ? { path: node.path, stat: node.stat } : { stat: node.stat };
}
