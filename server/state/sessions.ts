/**
 * Client sessions (Idempotent Receiver, Raft thesis §6.3): each client registers once, numbers
 * its writes, and a write whose (clientId, seq) was already applied answers its recorded result
 * instead of applying again — so a retry after a lost answer is exactly-once. Memory is
 * bounded: a client says which answers it has received (ackedThrough) and those are dropped;
 * each session keeps at most RESULTS_PER_SESSION_MAX answers; sessions idle for the session TTL
 * (in log time) expire, least recently active first, and so do the oldest when there are too many.
 *
 * Must never: read a clock; apply a recorded (clientId, seq) twice; order anything by
 * something other than the replicated apply order (a Map's insertion order is that order).
 */

import type { ErrorCode } from '../../shared/errors.js';
import type { ChangeTracker } from './changes.js';

export const SESSION_TTL_MS_DEFAULT = 60_000;
export const SESSIONS_MAX_DEFAULT = 100_000;
export const RESULTS_PER_SESSION_MAX = 1_024;

export interface ClientStamp {
  readonly id: number;
  /** This request's number; a client numbers its writes 1, 2, 3… */
  readonly seq: number;
  /** The client has every answer up to this seq: those may be forgotten. */
  readonly ackedThrough: number;
}

interface Session {
  lastActiveMs: number;
  /** When it was last active in apply order (a counter): restores the least-recently-active order. */
  lastActivity: number;
  ackedThrough: number;
  /** Recorded answers by seq, for seqs above ackedThrough. */
  readonly results: Map<number, unknown>;
}

/** A session without its recorded answers, as a state store keeps it. */
export interface SessionHeader {
  readonly id: number;
  readonly lastActiveMs: number;
  readonly lastActivity: number;
  readonly ackedThrough: number;
}

/** A session as a state store holds it. */
export interface SessionRecord extends SessionHeader {
  readonly results: readonly (readonly [seq: number, result: unknown])[];
}

export type Admission =
  | { readonly kind: 'new' }
  | { readonly kind: 'repeat'; readonly result: unknown }
  | { readonly kind: 'refused'; readonly code: ErrorCode; readonly message: string };

export class SessionTable {
  /** In least-recently-active order: activity re-inserts a session at the end. */
  private readonly sessions = new Map<number, Session>();
  private nextId = 1;
  private activity = 0;

  /** `changes` records which sessions and recorded answers changed, for the state store. */
  constructor(
    private readonly ttlMs = SESSION_TTL_MS_DEFAULT,
    private readonly sessionsMax = SESSIONS_MAX_DEFAULT,
    private readonly changes: ChangeTracker | null = null,
  ) {}

  /** A table rebuilt from what a state store held. */
  static restore(
    image: { readonly nextId: number; readonly activity: number; readonly sessions: Iterable<SessionRecord> },
    ttlMs = SESSION_TTL_MS_DEFAULT,
    sessionsMax = SESSIONS_MAX_DEFAULT,
    changes: ChangeTracker | null = null,
  ): SessionTable {
    const table = new SessionTable(ttlMs, sessionsMax, changes);
    const records = [...image.sessions].sort((a, b) => a.lastActivity - b.lastActivity);
    for (const r of records) {
      table.sessions.set(r.id, { lastActiveMs: r.lastActiveMs, lastActivity: r.lastActivity, ackedThrough: r.ackedThrough, results: new Map(r.results) });
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
    return { id, lastActiveMs: s.lastActiveMs, lastActivity: s.lastActivity, ackedThrough: s.ackedThrough };
  }

  /** A recorded answer, or undefined if it was dropped (or its session is gone). */
  recordedResult(id: number, seq: number): unknown {
    return this.sessions.get(id)?.results.get(seq);
  }

  get size(): number {
    return this.sessions.size;
  }

  register(nowMs: number): number {
    const id = this.nextId++;
    this.sessions.set(id, { lastActiveMs: nowMs, lastActivity: ++this.activity, ackedThrough: 0, results: new Map() });
    this.changes?.sessions.add(id);
    while (this.sessions.size > this.sessionsMax) this.drop(this.sessions.keys().next().value!);
    return id;
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
    if (!isStamp(stamp)) return { kind: 'refused', code: 'INVALID_ARGUMENT', message: 'client must be { id, seq, ackedThrough } with seq > ackedThrough >= 0' };
    const session = this.sessions.get(stamp.id);
    if (session === undefined) return { kind: 'refused', code: 'SESSION_EXPIRED', message: `client session ${stamp.id} is unknown or expired` };
    this.touch(stamp.id, session, nowMs);
    if (stamp.ackedThrough > session.ackedThrough) {
      session.ackedThrough = stamp.ackedThrough;
      for (const seq of session.results.keys()) {
        if (seq > stamp.ackedThrough) continue;
        session.results.delete(seq);
        this.changes?.result(stamp.id, seq);
      }
    }
    if (stamp.seq <= session.ackedThrough) {
      return { kind: 'refused', code: 'INVALID_ARGUMENT', message: `seq ${stamp.seq} was already acknowledged by client ${stamp.id}` };
    }
    if (session.results.has(stamp.seq)) return { kind: 'repeat', result: session.results.get(stamp.seq) };
    return { kind: 'new' };
  }

  /** Record the answer to an admitted write, so a retry gets the same one. */
  recordResult(stamp: ClientStamp, result: unknown): void {
    const session = this.sessions.get(stamp.id);
    if (session === undefined) return;
    session.results.set(stamp.seq, result);
    this.changes?.result(stamp.id, stamp.seq);
    if (session.results.size > RESULTS_PER_SESSION_MAX) {
      // A client this far ahead of its acknowledgements loses the oldest answer it has not acked.
      let oldest = Number.POSITIVE_INFINITY;
      for (const seq of session.results.keys()) oldest = Math.min(oldest, seq);
      session.results.delete(oldest);
      this.changes?.result(stamp.id, oldest);
    }
  }

  /** Keep a session alive with no write (a client that only reads or waits). */
  keepAlive(id: number, nowMs: number): boolean {
    const session = this.sessions.get(id);
    if (session === undefined) return false;
    this.touch(id, session, nowMs);
    return true;
  }

  /** Every session with its recorded answers, in least-recently-active order (for a full store write). */
  records(): SessionRecord[] {
    return [...this.sessions].map(([id, s]) => ({ id, lastActiveMs: s.lastActiveMs, lastActivity: s.lastActivity, ackedThrough: s.ackedThrough, results: [...s.results] }));
  }

  dump(): { nextId: number; sessions: { id: number; lastActiveMs: number; ackedThrough: number; seqs: number[] }[] } {
    return {
      nextId: this.nextId,
      sessions: [...this.sessions].map(([id, s]) => ({ id, lastActiveMs: s.lastActiveMs, ackedThrough: s.ackedThrough, seqs: [...s.results.keys()].sort((a, b) => a - b) })),
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
    if (this.changes === null) return;
    this.changes.sessions.add(id);
    for (const seq of session.results.keys()) this.changes.result(id, seq);
  }
}

function isStamp(value: unknown): value is ClientStamp {
  if (typeof value !== 'object' || value === null) return false;
  const { id, seq, ackedThrough } = value as Record<string, unknown>;
  return Number.isInteger(id) && Number.isInteger(seq) && Number.isInteger(ackedThrough) && (ackedThrough as number) >= 0 && (seq as number) > (ackedThrough as number);
}
