/**
 * A plain reference model of the StateMachine's lease and session semantics, for the property
 * tests in state-machine.property.test.ts. Written from the rules, not from the code: log time
 * is the largest finite entry time seen; leases have ids 1, 2, 3…, a ttl from 1,000 to
 * 86,400,000 ms and the log time of their grant, and no deadline (the leader keeps those);
 * there is one lease epoch, from 0, that refresh-all raises to its term and never lowers; an
 * expiry whose term is below the epoch is stale and changes nothing, any other ends every listed
 * lease that exists, whatever the time; revoke and expire delete the lease and every node it
 * owns at one revision; a lease keep-alive is an unknown operation now; client sessions have ids
 * 1, 2, 3…, expire when lastActive + ttl <= now (checked before anything else at each entry),
 * are refreshed by any stamped write or keep-alive, carry the secret their register gave them
 * (a stamp or keep-alive with another is refused and moves nothing), answer a register retried
 * with their nonce, are never evicted (a full table refuses a new one), and answer a repeated
 * (clientId, seq) with the recorded answer; a seq whose answer was acknowledged or pushed out
 * (past `resultsMax`, the oldest first) is refused as of unknown outcome and never applied.
 *
 * The namespace is only as much as these rules need: a map of path → owning lease (or null) for
 * flat paths (`/e1`, `/p1`…), plus sequential creates under `/q` (`/q/job-` with parents), and
 * which changes each command makes (so the revision and events can be predicted). Anything else
 * is refused by a thrown Error: the tests must not feed it what it does not model.
 *
 * Must never: import runtime code from server/ (it would then agree with the code by
 * construction), read a clock or randomness, or be clever — every rule is a loop over plain
 * arrays and maps, in the order the rule states it.
 */

import type { ErrorCode } from '../../../shared/errors.js';

export const MODEL_LEASE_TTL_MIN = 1_000;
export const MODEL_LEASE_TTL_MAX = 86_400_000;
/** A session keeps at most this many unacknowledged answers by default (server/state/sessions.ts). */
export const MODEL_RESULTS_PER_SESSION_MAX = 1_024;
/** A session secret's shape: 32 lowercase hex digits. */
const SECRET_SHAPE = /^[0-9a-f]{32}$/;
/** The parent of sequential creates; its children are never deleted by the generated commands. */
export const SEQUENTIAL_PARENT = '/q';

export interface ModelLease {
  readonly id: number;
  readonly ttlMs: number;
  readonly grantedAtMs: number;
}

/**
 * Lease commands of the shapes the state machine no longer takes: the replicated keep-alive, and
 * expire / refresh-all without a term (what an older proposer wrote). All are refused.
 */
export type RetiredCommand =
  | { readonly op: 'leaseKeepAlive'; readonly lease: number }
  | { readonly op: 'leaseExpire'; readonly leases: readonly number[] }
  | { readonly op: 'leaseRefreshAll' };

export type ModelCommand =
  | { readonly op: 'leaseGrant'; readonly ttlMs: number }
  | { readonly op: 'leaseRevoke'; readonly lease: number }
  /** `term` may be any number here: a non-integer one is refused. */
  | { readonly op: 'leaseExpire'; readonly leases: readonly number[]; readonly term: number }
  | { readonly op: 'leaseRefreshAll'; readonly term: number }
  | RetiredCommand
  | { readonly op: 'registerClient'; readonly secret: string; readonly nonce?: string; readonly sessionsMax?: number }
  | { readonly op: 'sessionKeepAlive'; readonly clientId: number; readonly secret: string }
  /** A flat path (`/e1`), optionally ephemeral; or sequential under /q with parents: true. */
  | { readonly op: 'create'; readonly path: string; readonly value: Uint8Array; readonly lease?: number; readonly sequential?: boolean; readonly parents?: boolean }
  /** A plain put (no lease, no ifVersion) of a flat path. */
  | { readonly op: 'put'; readonly path: string; readonly value: Uint8Array }
  /** A plain delete (no ifVersion) of a flat path. */
  | { readonly op: 'delete'; readonly path: string };

/** What the tests compare of an answer: everything but the error prose and node payloads. */
export type Answer =
  | { readonly ok: false; readonly code: ErrorCode; readonly revision: number }
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseGrant'; readonly lease: ModelLease }
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseRevoke' | 'leaseExpire'; readonly leases: readonly number[]; readonly deleted: number }
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseExpire'; readonly leases: readonly []; readonly deleted: 0; readonly stale: true }
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseRefreshAll'; readonly leases: number; readonly epoch: number }
  | { readonly ok: true; readonly revision: number; readonly op: 'registerClient'; readonly clientId: number; readonly existing: boolean }
  | { readonly ok: true; readonly revision: number; readonly op: 'sessionKeepAlive' }
  | { readonly ok: true; readonly revision: number; readonly op: 'create'; readonly path: string; readonly lease: number | null }
  /** `path`: null in a recorded answer (a session keeps no path the client sent itself). */
  | { readonly ok: true; readonly revision: number; readonly op: 'put'; readonly path: string | null; readonly lease: number | null; readonly created: boolean }
  | { readonly ok: true; readonly revision: number; readonly op: 'delete'; readonly deleted: number };

export interface ModelStamp {
  readonly id: unknown;
  readonly seq: unknown;
  readonly ackedThrough: unknown;
  readonly secret: unknown;
}

export interface ModelEntry {
  readonly timeMs: number;
  readonly command: ModelCommand;
  readonly client?: ModelStamp;
}

export interface ModelSessionDump {
  readonly id: number;
  readonly lastActiveMs: number;
  readonly ackedThrough: number;
  readonly forgottenThrough: number;
  readonly seqs: number[];
}

interface ModelSession {
  readonly id: number;
  readonly secret: string;
  readonly nonce: string | null;
  lastActiveMs: number;
  ackedThrough: number;
  /** The highest seq whose answer was pushed out past resultsMax. */
  forgottenThrough: number;
  /** Recorded answers by seq. */
  readonly results: Map<number, Answer>;
}

export class StateModel {
  logTimeMs = 0;
  revision = 0;
  /** Every node but the root: path → the lease it dies with, or null for a plain node. */
  readonly nodes = new Map<string, number | null>();
  /** How many children /q has ever had created (its sequential counter). */
  private sequentialCounter = 0;
  readonly leases = new Map<number, ModelLease>();
  private nextLeaseId = 1;
  /** The highest term any applied refresh-all carried (0 before the first). */
  leaseEpoch = 0;
  /** Least recently active first. */
  private sessions: ModelSession[] = [];
  private nextClientId = 1;

  constructor(
    private readonly sessionTtlMs: number,
    private readonly sessionsMax: number,
    private readonly resultsMax = MODEL_RESULTS_PER_SESSION_MAX,
  ) {}

  /** Apply one entry: its answer and its events as `kind path @revision`. */
  apply(entry: ModelEntry): { answer: Answer; events: string[] } {
    if (Number.isFinite(entry.timeMs)) this.logTimeMs = Math.max(this.logTimeMs, entry.timeMs);
    const now = this.logTimeMs;
    this.sessions = this.sessions.filter((s) => s.lastActiveMs + this.sessionTtlMs > now);
    if (entry.client === undefined) return this.run(entry.command);

    const stamp = entry.client;
    const { id, seq, ackedThrough, secret } = stamp;
    const wellFormed =
      Number.isInteger(id) &&
      Number.isInteger(seq) &&
      Number.isInteger(ackedThrough) &&
      (ackedThrough as number) >= 0 &&
      (seq as number) > (ackedThrough as number) &&
      typeof secret === 'string';
    if (!wellFormed) return { answer: this.error('INVALID_ARGUMENT'), events: [] };
    const session = this.sessions.find((s) => s.id === id);
    if (session === undefined) return { answer: this.error('SESSION_EXPIRED'), events: [] };
    // Not the owner's stamp: nothing about the session moves.
    if (session.secret !== secret) return { answer: this.error('UNAUTHENTICATED'), events: [] };
    this.touch(session);
    if ((ackedThrough as number) > session.ackedThrough) {
      session.ackedThrough = ackedThrough as number;
      for (const recorded of [...session.results.keys()]) if (recorded <= session.ackedThrough) session.results.delete(recorded);
    }
    const recorded = session.results.get(seq as number);
    if (recorded !== undefined) return { answer: recorded, events: [] };
    // Its answer is gone (acknowledged, or pushed out): it may be a retry of one applied.
    if ((seq as number) <= session.ackedThrough || (seq as number) <= session.forgottenThrough) return { answer: this.error('OUTCOME_UNKNOWN'), events: [] };
    const applied = this.run(entry.command);
    session.results.set(seq as number, applied.answer.ok && applied.answer.op === 'put' ? { ...applied.answer, path: null } : applied.answer);
    if (session.results.size > this.resultsMax) {
      const oldest = Math.min(...session.results.keys());
      session.results.delete(oldest);
      session.forgottenThrough = Math.max(session.forgottenThrough, oldest);
    }
    return applied;
  }

  leaseDump(): { nextId: number; epoch: number; leases: ModelLease[] } {
    return { nextId: this.nextLeaseId, epoch: this.leaseEpoch, leases: [...this.leases.values()].sort((a, b) => a.id - b.id).map((l) => ({ ...l })) };
  }

  sessionDump(): { nextId: number; sessions: ModelSessionDump[] } {
    return {
      nextId: this.nextClientId,
      sessions: this.sessions.map((s) => ({ id: s.id, lastActiveMs: s.lastActiveMs, ackedThrough: s.ackedThrough, forgottenThrough: s.forgottenThrough, seqs: [...s.results.keys()].sort((a, b) => a - b) })),
    };
  }

  /** The live sessions' ids, least recently active first. */
  sessionIds(): number[] {
    return this.sessions.map((s) => s.id);
  }

  /** The secret a live session was registered with. */
  sessionSecret(id: number): string | undefined {
    return this.sessions.find((s) => s.id === id)?.secret;
  }

  sessionAckedThrough(id: number): number | undefined {
    return this.sessions.find((s) => s.id === id)?.ackedThrough;
  }

  recordedSeqs(id: number): number[] {
    return [...(this.sessions.find((s) => s.id === id)?.results.keys() ?? [])].sort((a, b) => a - b);
  }

  get nextLease(): number {
    return this.nextLeaseId;
  }

  get nextClient(): number {
    return this.nextClientId;
  }

  /** Nodes as sorted [path, lease] pairs. */
  nodeList(): [string, number | null][] {
    return [...this.nodes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private run(command: ModelCommand): { answer: Answer; events: string[] } {
    const now = this.logTimeMs;
    switch (command.op) {
      case 'leaseGrant': {
        const ttl = command.ttlMs;
        if (!Number.isInteger(ttl) || ttl < MODEL_LEASE_TTL_MIN || ttl > MODEL_LEASE_TTL_MAX) return { answer: this.error('INVALID_ARGUMENT'), events: [] };
        const lease: ModelLease = { id: this.nextLeaseId, ttlMs: ttl, grantedAtMs: now };
        this.nextLeaseId += 1;
        this.leases.set(lease.id, lease);
        return { answer: { ok: true, revision: this.revision, op: 'leaseGrant', lease: { ...lease } }, events: [] };
      }
      case 'leaseKeepAlive':
        // Keep-alives go to the leader alone now: in the log it is an operation nobody knows.
        return { answer: this.error('INVALID_ARGUMENT'), events: [] };
      case 'leaseRevoke': {
        if (!this.leases.has(command.lease)) return { answer: this.error('LEASE_NOT_FOUND'), events: [] };
        return this.endLeases([command.lease], 'leaseRevoke');
      }
      case 'leaseExpire': {
        if (!command.leases.every((id) => Number.isInteger(id))) return { answer: this.error('INVALID_ARGUMENT'), events: [] };
        const term = 'term' in command ? command.term : undefined;
        if (term === undefined || !Number.isInteger(term)) return { answer: this.error('INVALID_ARGUMENT'), events: [] };
        // Proposed by a leader a newer one has superseded: it ends nothing and takes no revision.
        if (term < this.leaseEpoch) return { answer: { ok: true, revision: this.revision, op: 'leaseExpire', leases: [], deleted: 0, stale: true }, events: [] };
        // No deadline is consulted: the proposer saw these run out; every listed one that exists ends.
        return this.endLeases(command.leases.filter((id) => this.leases.has(id)), 'leaseExpire');
      }
      case 'leaseRefreshAll': {
        const term = 'term' in command ? command.term : undefined;
        if (term === undefined || !Number.isInteger(term)) return { answer: this.error('INVALID_ARGUMENT'), events: [] };
        this.leaseEpoch = Math.max(this.leaseEpoch, term);
        return { answer: { ok: true, revision: this.revision, op: 'leaseRefreshAll', leases: this.leases.size, epoch: this.leaseEpoch }, events: [] };
      }
      case 'registerClient': {
        if (typeof command.secret !== 'string' || !SECRET_SHAPE.test(command.secret)) return { answer: this.error('INVALID_ARGUMENT'), events: [] };
        const nonce = command.nonce ?? null;
        const again = nonce === null ? undefined : this.sessions.find((s) => s.nonce === nonce);
        if (again !== undefined) {
          this.touch(again);
          return { answer: { ok: true, revision: this.revision, op: 'registerClient', clientId: again.id, existing: true }, events: [] };
        }
        // Full: refused, whoever is in the table stays (the proposer's bound counts too).
        if (this.sessions.length >= Math.min(this.sessionsMax, command.sessionsMax ?? this.sessionsMax)) return { answer: this.error('RESOURCE_EXHAUSTED'), events: [] };
        const id = this.nextClientId;
        this.nextClientId += 1;
        this.sessions.push({ id, secret: command.secret, nonce, lastActiveMs: now, ackedThrough: 0, forgottenThrough: 0, results: new Map() });
        return { answer: { ok: true, revision: this.revision, op: 'registerClient', clientId: id, existing: false }, events: [] };
      }
      case 'sessionKeepAlive': {
        if (typeof command.secret !== 'string' || !SECRET_SHAPE.test(command.secret)) return { answer: this.error('INVALID_ARGUMENT'), events: [] };
        const session = this.sessions.find((s) => s.id === command.clientId);
        if (session === undefined) return { answer: this.error('SESSION_EXPIRED'), events: [] };
        if (session.secret !== command.secret) return { answer: this.error('UNAUTHENTICATED'), events: [] };
        this.touch(session);
        return { answer: { ok: true, revision: this.revision, op: 'sessionKeepAlive' }, events: [] };
      }
      case 'create':
        return this.create(command);
      case 'put': {
        requireFlat(command.path);
        const existing = this.nodes.get(command.path);
        const created = existing === undefined;
        const lease = existing ?? null;
        // A put that makes the node is a creation (its event says so); otherwise the lease stays.
        this.nodes.set(command.path, lease);
        this.revision += 1;
        return { answer: { ok: true, revision: this.revision, op: 'put', path: command.path, lease, created }, events: [`${created ? 'create' : 'put'} ${command.path} @${this.revision}`] };
      }
      case 'delete': {
        requireFlat(command.path);
        if (!this.nodes.has(command.path)) return { answer: this.error('NO_NODE'), events: [] };
        this.nodes.delete(command.path);
        this.revision += 1;
        return { answer: { ok: true, revision: this.revision, op: 'delete', deleted: 1 }, events: [`delete ${command.path} @${this.revision}`] };
      }
      default:
        throw new Error(`the model does not know ${JSON.stringify(command)}`);
    }
  }

  private create(command: Extract<ModelCommand, { op: 'create' }>): { answer: Answer; events: string[] } {
    // The lease is checked before the node's existence.
    if (command.lease !== undefined && !this.leases.has(command.lease)) return { answer: this.error('LEASE_NOT_FOUND'), events: [] };
    const lease = command.lease ?? null;
    if (command.sequential === true) {
      if (command.path !== `${SEQUENTIAL_PARENT}/job-` || command.parents !== true || lease !== null) throw new Error(`the model only knows sequential creates of ${SEQUENTIAL_PARENT}/job- with parents`);
      const events: string[] = [];
      const revision = this.revision + 1;
      if (!this.nodes.has(SEQUENTIAL_PARENT)) {
        this.nodes.set(SEQUENTIAL_PARENT, null);
        events.push(`create ${SEQUENTIAL_PARENT} @${revision}`);
      }
      const path = `${SEQUENTIAL_PARENT}/job-${String(this.sequentialCounter).padStart(10, '0')}`;
      this.sequentialCounter += 1;
      this.nodes.set(path, null);
      events.push(`create ${path} @${revision}`);
      this.revision = revision;
      return { answer: { ok: true, revision, op: 'create', path, lease: null }, events };
    }
    requireFlat(command.path);
    if (command.parents !== undefined) throw new Error('the model only knows flat creates without parents');
    if (this.nodes.has(command.path)) return { answer: this.error('NODE_EXISTS'), events: [] };
    this.nodes.set(command.path, lease);
    this.revision += 1;
    return { answer: { ok: true, revision: this.revision, op: 'create', path: command.path, lease }, events: [`create ${command.path} @${this.revision}`] };
  }

  /** Forget these leases (de-duplicated, in id order) and delete their nodes at one revision. */
  private endLeases(ids: readonly number[], op: 'leaseRevoke' | 'leaseExpire'): { answer: Answer; events: string[] } {
    const leases = [...new Set(ids)].sort((a, b) => a - b);
    const doomed: string[] = [];
    for (const id of leases) {
      const owned = [...this.nodes].filter(([, lease]) => lease === id).map(([path]) => path);
      doomed.push(...owned.sort());
    }
    for (const path of doomed) this.nodes.delete(path);
    for (const id of leases) this.leases.delete(id);
    if (doomed.length > 0) this.revision += 1;
    const events = doomed.map((path) => `delete ${path} @${this.revision}`);
    return { answer: { ok: true, revision: this.revision, op, leases, deleted: doomed.length }, events };
  }

  private touch(session: ModelSession): void {
    session.lastActiveMs = Math.max(session.lastActiveMs, this.logTimeMs);
    this.sessions = [...this.sessions.filter((s) => s !== session), session];
  }

  private error(code: ErrorCode): Answer {
    return { ok: false, code, revision: this.revision };
  }
}

/** Flat paths only (`/e1`, `/p2`): one segment, a short name, so plain string order is path order. */
function requireFlat(path: string): void {
  if (!/^\/[a-z][0-9]$/.test(path)) throw new Error(`the model only knows flat paths like /e1, got ${path}`);
}
