/**
 * The replicated state machine: applies committed log entries, in order, to the namespace, the
 * lease table and the client sessions (a stamped write is applied at most once). Deterministic: every member that applies the same entries holds the same
 * state and answers the same results. The only time it knows is log time — the proposer's
 * clock carried in each entry, never allowed to go back (a new leader's clock may be behind
 * the old one's).
 *
 * Must never: read a clock or randomness, skip or repeat an entry, or throw for bad input in a
 * command (it answers an error code and changes nothing).
 */

import type { ErrorCode } from '../../shared/errors.js';
import { AuthTable, AUTH_OPS, type AuthCommand, type AuthImage } from './auth.js';
import { authorizeEntry } from './authorize.js';
import { ChangeTracker, type VersionChange } from './changes.js';
import { MemberTable, type MemberChangeCommand, type MembersImage } from './members.js';
import { ALARM_KINDS, AlarmTable, type Alarm, type AlarmCommand, type AlarmKind } from './alarms.js';
import { LeaseTable, type Lease } from './leases.js';
import { Namespace, type NamespaceOptions } from './namespace.js';
import { recordable, SessionTable, SESSION_SECRET_PATTERN, SESSION_TTL_MS_DEFAULT, SESSIONS_MAX_DEFAULT, type ClientStamp, type SessionRecord } from './sessions.js';
import { describe } from './validate.js';
import type { ChangeEvent, CommandResult, LeaseId, NamespaceCommand } from './types.js';

export type LeaseCommand =
  /** `lease`: the id the client chose (a retried grant answers the lease it made); `leasesMax`: the proposer's bound. */
  | { readonly op: 'leaseGrant'; readonly ttlMs: number; readonly lease?: LeaseId; readonly leasesMax?: number }
  | { readonly op: 'leaseRevoke'; readonly lease: LeaseId }
  /**
   * Proposed by the leader, in its term, for the leases whose time it saw run out. Applied only
   * if no newer leader has refreshed the leases since (term ≥ the lease epoch).
   */
  | { readonly op: 'leaseExpire'; readonly leases: readonly LeaseId[]; readonly term: number }
  /** A new leader's first proposal: it gave every lease a full TTL; its term is the lease epoch now. */
  | { readonly op: 'leaseRefreshAll'; readonly term: number };

export type SessionCommand =
  /** `secret`: drawn by the proposer; `nonce`: the client's, so a retry answers the same session; `sessionsMax`: the proposer's bound. */
  | { readonly op: 'registerClient'; readonly secret: string; readonly nonce?: string; readonly sessionsMax?: number }
  | { readonly op: 'sessionKeepAlive'; readonly clientId: number; readonly secret: string };

/** A compaction a member proposes on its own (--auto-compaction-retention): a compact that needs no user. */
export interface AutoCompactCommand {
  readonly op: 'autoCompact';
  readonly revision: number;
}

export type StateCommand = NamespaceCommand | LeaseCommand | SessionCommand | AuthCommand | MemberChangeCommand | AlarmCommand | AutoCompactCommand;

export type StateResult =
  | CommandResult
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseGrant'; readonly lease: Lease; readonly existing: boolean }
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseRevoke' | 'leaseExpire'; readonly leases: readonly LeaseId[]; readonly deleted: number }
  /** An expiry proposed under a lease epoch a newer leader superseded: nothing ended. */
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseExpire'; readonly leases: readonly []; readonly deleted: 0; readonly stale: true }
  | { readonly ok: true; readonly revision: number; readonly op: 'leaseRefreshAll'; readonly leases: number; readonly epoch: number }
  | { readonly ok: true; readonly revision: number; readonly op: 'registerClient'; readonly clientId: number; readonly secret: string; readonly existing: boolean }
  | { readonly ok: true; readonly revision: number; readonly op: 'sessionKeepAlive' }
  | { readonly ok: true; readonly revision: number; readonly op: AuthCommand['op']; readonly authRevision: number }
  | { readonly ok: true; readonly revision: number; readonly op: 'memberChange' }
  | { readonly ok: true; readonly revision: number; readonly op: 'alarm'; readonly changed: boolean };

/** A committed entry as the state machine sees it. */
export interface StateEntry {
  readonly index: number;
  /** The proposer's clock when it proposed this entry (ms). */
  readonly timeMs: number;
  readonly command: unknown;
  /** Set on a client's write: who sent it and its number, for exactly-once retries. */
  readonly client?: ClientStamp;
  /** The user the proposing member authenticated (auth enabled): checked, and owns what it makes. */
  readonly user?: string;
}

export interface StateMachineOptions extends Omit<NamespaceOptions, 'leaseExists' | 'changes'> {
  /** A client session idle this long (log time) expires. */
  readonly sessionTtlMs?: number;
  readonly sessionsMax?: number;
  /** Unacknowledged answers kept per session (default RESULTS_PER_SESSION_MAX); every member must use the same. */
  readonly resultsPerSessionMax?: number;
  /** Record what each apply changes, for a state store to take (takeChanges). */
  readonly trackChanges?: boolean;
}

/** The scalars a state store keeps beside the data, written in the same batch. */
export interface StateMeta {
  readonly appliedIndex: number;
  readonly logTimeMs: number;
  readonly revision: number;
  readonly compactRevision: number;
  readonly nextLeaseId: number;
  /** The lease epoch: the term of the last leader that refreshed every lease. */
  readonly leaseEpoch: number;
  readonly nextClientId: number;
  readonly sessionActivity: number;
}

/** Everything a state store holds, to rebuild the state machine at start. */
export interface StateImage {
  readonly meta: StateMeta;
  /** In path order and, per path, by revision. */
  readonly versions: Iterable<VersionChange>;
  readonly leases: readonly Lease[];
  readonly sessions: Iterable<SessionRecord>;
  /** Absent in a store written before auth existed: auth off, no users. */
  readonly auth?: AuthImage;
  /** Absent in a store written before membership changes: no member added or removed. */
  readonly members?: MembersImage;
  /** Absent when no alarm is active. */
  readonly alarms?: readonly Alarm[];
}

export class StateMachine {
  readonly namespace: Namespace;
  readonly leases: LeaseTable;
  readonly sessions: SessionTable;
  readonly auth: AuthTable;
  readonly members: MemberTable;
  readonly alarms: AlarmTable;
  private readonly changes: ChangeTracker | null;
  private appliedIndexNow = 0;
  private logTimeMsNow = 0;

  constructor(options: StateMachineOptions = {}, image?: StateImage) {
    const { sessionTtlMs, sessionsMax, resultsPerSessionMax, trackChanges, ...namespaceOptions } = options;
    this.changes = trackChanges === true ? new ChangeTracker() : null;
    const nsOptions: NamespaceOptions = { ...namespaceOptions, leaseExists: (id) => this.leases.has(id), ...(this.changes === null ? {} : { changes: this.changes }) };
    const ttl = sessionTtlMs ?? SESSION_TTL_MS_DEFAULT;
    const max = sessionsMax ?? SESSIONS_MAX_DEFAULT;
    if (image === undefined) {
      this.namespace = new Namespace(nsOptions);
      this.leases = new LeaseTable(this.changes);
      this.sessions = new SessionTable(ttl, max, this.changes, resultsPerSessionMax);
      this.auth = new AuthTable(this.changes);
      this.members = new MemberTable(this.changes);
      this.alarms = new AlarmTable(this.changes);
      return;
    }
    const { meta } = image;
    this.namespace = Namespace.restore(nsOptions, { revision: meta.revision, compactRevision: meta.compactRevision, versions: image.versions });
    this.leases = LeaseTable.restore({ nextId: meta.nextLeaseId, epoch: meta.leaseEpoch, leases: image.leases }, this.changes);
    this.sessions = SessionTable.restore({ nextId: meta.nextClientId, activity: meta.sessionActivity, sessions: image.sessions }, ttl, max, this.changes, resultsPerSessionMax);
    this.auth = image.auth === undefined ? new AuthTable(this.changes) : AuthTable.restore(image.auth, this.changes);
    this.members = image.members === undefined ? new MemberTable(this.changes) : MemberTable.restore(image.members, this.changes);
    this.alarms = AlarmTable.restore(image.alarms ?? [], this.changes);
    this.appliedIndexNow = meta.appliedIndex;
    this.logTimeMsNow = meta.logTimeMs;
  }

  /** A state machine rebuilt from a state store's image: it goes on from the image's applied index. */
  static restore(image: StateImage, options: StateMachineOptions = {}): StateMachine {
    return new StateMachine(options, image);
  }

  get meta(): StateMeta {
    const sessions = this.sessions.counters;
    return {
      appliedIndex: this.appliedIndexNow,
      logTimeMs: this.logTimeMsNow,
      revision: this.namespace.revision,
      compactRevision: this.namespace.compactRevision,
      nextLeaseId: this.leases.nextLeaseId,
      leaseEpoch: this.leases.epoch,
      nextClientId: sessions.nextId,
      sessionActivity: sessions.activity,
    };
  }

  /** What changed since the last take (needs trackChanges). */
  takeChanges(): ChangeTracker {
    if (this.changes === null) throw new Error('state machine: takeChanges needs trackChanges');
    return this.changes.take();
  }

  get appliedIndex(): number {
    return this.appliedIndexNow;
  }

  get logTimeMs(): number {
    return this.logTimeMsNow;
  }

  get revision(): number {
    return this.namespace.revision;
  }

  apply(entry: StateEntry): { result: StateResult; events: ChangeEvent[] } {
    if (entry.index !== this.appliedIndexNow + 1) {
      // The runtime feeds entries in order; a gap or a repeat is a bug there, never input.
      throw new Error(`state machine: entry ${entry.index} applied after ${this.appliedIndexNow}`);
    }
    this.appliedIndexNow = entry.index;
    if (Number.isFinite(entry.timeMs) && entry.timeMs > this.logTimeMsNow) this.logTimeMsNow = entry.timeMs;
    this.sessions.expire(this.logTimeMsNow);
    // Checked while auth is on; what it makes (leases, sessions) belongs to the user.
    const user = this.auth.enabled ? entry.user : undefined;
    if (entry.client === undefined) {
      const refusal = authorizeEntry(this, entry.command, entry.user, undefined);
      if (refusal !== null) return { result: this.refused(refusal.code, refusal.message), events: [] };
      return this.applyCommand(entry.command, user);
    }
    // Another user's session: refused before anything about the session moves.
    const owner = this.sessions.owner((entry.client as { id?: number }).id ?? 0);
    if (this.auth.enabled && owner !== undefined && owner !== entry.user) return { result: this.refused('PERMISSION_DENIED', `client session ${entry.client.id} belongs to another user`), events: [] };
    const admission = this.sessions.admit(entry.client, this.logTimeMsNow);
    if (admission.kind === 'refused') return { result: this.refused(admission.code, admission.message), events: [] };
    // A retry of a write already applied: the same answer, and nothing applied again — even if
    // the user lost the permission since (a refusal would tell it the write never happened).
    if (admission.kind === 'repeat') return { result: admission.result as StateResult, events: [] };
    const refusal = authorizeEntry(this, entry.command, entry.user, entry.client.id);
    if (refusal !== null) return { result: this.refused(refusal.code, refusal.message), events: [] };
    const applied = this.applyCommand(entry.command, user);
    this.sessions.recordResult(entry.client, recordable(applied.result));
    return applied;
  }

  private applyCommand(command: unknown, user: string | undefined): { result: StateResult; events: ChangeEvent[] } {
    if (typeof command === 'object' && command !== null && typeof (command as { op?: unknown }).op === 'string') {
      const op = (command as { op: string }).op;
      const noSpace = this.alarms.active('NO_SPACE');
      if (noSpace !== undefined && addsData(command as Record<string, unknown>, (id) => this.leases.has(id))) {
        return { result: this.refused('NO_SPACE', `the cluster is past its space quota (${noSpace.member} holds ${noSpace.usedBytes} bytes, --quota-bytes ${noSpace.quotaBytes}): writes that add data are refused until deletes and compaction bring it back under; deletes, compactions and reads work`), events: [] };
      }
      if (op.startsWith('lease')) return this.applyLease(command as Record<string, unknown>, user);
      if (op === 'registerClient' || op === 'sessionKeepAlive') return this.applySession(command as Record<string, unknown>, user);
      if (AUTH_OPS.has(op)) return this.applyAuth(command as AuthCommand);
      if (op === 'memberChange') return this.applyMemberChange(command as Record<string, unknown>);
      if (op === 'alarm') return this.applyAlarm(command as Record<string, unknown>);
      // Members propose it, never clients: what it does is a compact.
      if (op === 'autoCompact') return this.namespace.apply({ op: 'compact', revision: (command as { revision: number }).revision });
    }
    return this.namespace.apply(command as NamespaceCommand);
  }

  /** A member raised or cleared one of its alarms (members propose these, never clients). */
  private applyAlarm(command: Record<string, unknown>): { result: StateResult; events: ChangeEvent[] } {
    const { action, member, kind, usedBytes, quotaBytes } = command;
    const count = (n: unknown): boolean => n === undefined || (Number.isSafeInteger(n) && (n as number) >= 0);
    if ((action !== 'raise' && action !== 'clear') || typeof member !== 'string' || member.length === 0 || member.length > 128 || !ALARM_KINDS.includes(kind as AlarmKind) || !count(usedBytes) || !count(quotaBytes)) {
      return { result: this.refused('INVALID_ARGUMENT', 'an alarm names its action, member and kind'), events: [] };
    }
    const changed = this.alarms.apply({ op: 'alarm', action, member, kind: kind as AlarmKind, ...(usedBytes === undefined ? {} : { usedBytes: usedBytes as number }), ...(quotaBytes === undefined ? {} : { quotaBytes: quotaBytes as number }) }, this.logTimeMsNow);
    return { result: { ok: true, revision: this.revision, op: 'alarm', changed }, events: [] };
  }

  /** A configuration entry the log committed: the table follows it (the core already checked it). */
  private applyMemberChange(command: Record<string, unknown>): { result: StateResult; events: ChangeEvent[] } {
    const { change, name, peerUrl } = command;
    if ((change !== 'addLearner' && change !== 'promote' && change !== 'remove') || typeof name !== 'string' || (peerUrl !== undefined && typeof peerUrl !== 'string')) {
      return { result: this.refused('INVALID_ARGUMENT', 'a member change names its change and member'), events: [] };
    }
    this.members.apply({ op: 'memberChange', change, name, ...(typeof peerUrl === 'string' ? { peerUrl } : {}) });
    // A removed member can no longer clear its own alarms: they go with it.
    if (change === 'remove') this.alarms.clearMember(name);
    return { result: { ok: true, revision: this.revision, op: 'memberChange' }, events: [] };
  }

  private applyAuth(command: AuthCommand): { result: StateResult; events: ChangeEvent[] } {
    const answer = this.auth.apply(command);
    if (!answer.ok) return { result: { ...this.refused(answer.code, answer.message), ...(answer.limit === undefined ? {} : { limit: answer.limit }) } as StateResult, events: [] };
    return { result: { ok: true, revision: this.revision, op: command.op, authRevision: answer.authRevision }, events: [] };
  }

  private applyLease(command: Record<string, unknown>, user: string | undefined): { result: StateResult; events: ChangeEvent[] } {
    const now = this.logTimeMsNow;
    switch (command['op']) {
      case 'leaseGrant': {
        const { lease, leasesMax } = command;
        if (lease !== undefined && (!Number.isSafeInteger(lease) || (lease as number) < 1)) return { result: this.refused('INVALID_ARGUMENT', `lease must be a positive integer id, got ${describe(lease)}`), events: [] };
        if (leasesMax !== undefined && (!Number.isSafeInteger(leasesMax) || (leasesMax as number) < 1)) return { result: this.refused('INVALID_ARGUMENT', `leasesMax must be a positive integer, got ${describe(leasesMax)}`), events: [] };
        const answer = this.leases.grant(command['ttlMs'] as number, now, lease as LeaseId | undefined, leasesMax as number | undefined, user);
        if (!answer.ok) return { result: { ...this.refused(answer.code, answer.message), ...(answer.code === 'RESOURCE_EXHAUSTED' ? { limit: 'leasesMax' as const } : {}) } as StateResult, events: [] };
        return { result: { ok: true, revision: this.revision, op: 'leaseGrant', lease: answer.lease, existing: answer.existing }, events: [] };
      }
      case 'leaseRevoke': {
        const id = command['lease'];
        if (!Number.isInteger(id)) return { result: this.refused('INVALID_ARGUMENT', `lease must be an integer id, got ${describe(id)}`), events: [] };
        if (!this.leases.has(id as number)) return { result: this.refused('LEASE_NOT_FOUND', `lease ${id as number} does not exist`), events: [] };
        return this.endLeases([id as number], 'leaseRevoke');
      }
      case 'leaseExpire': {
        const ids = command['leases'];
        const term = command['term'];
        if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id))) {
          return { result: this.refused('INVALID_ARGUMENT', 'leases must be a list of integer ids'), events: [] };
        }
        if (!Number.isInteger(term)) return { result: this.refused('INVALID_ARGUMENT', `term must be an integer, got ${describe(term)}`), events: [] };
        // The proposer's leadership must still be the one that keeps the leases' time: a leader
        // that stalled while another took over (and refreshed them) proves nothing about them.
        if ((term as number) < this.leases.epoch) return { result: { ok: true, revision: this.revision, op: 'leaseExpire', leases: [], deleted: 0, stale: true }, events: [] };
        return this.endLeases((ids as number[]).filter((id) => this.leases.has(id)), 'leaseExpire');
      }
      case 'leaseRefreshAll': {
        const term = command['term'];
        if (!Number.isInteger(term)) return { result: this.refused('INVALID_ARGUMENT', `term must be an integer, got ${describe(term)}`), events: [] };
        this.leases.refresh(term as number);
        return { result: { ok: true, revision: this.revision, op: 'leaseRefreshAll', leases: this.leases.size, epoch: this.leases.epoch }, events: [] };
      }
      default:
        return { result: this.refused('INVALID_ARGUMENT', `unknown operation ${describe(command['op'])}`), events: [] };
    }
  }

  private applySession(command: Record<string, unknown>, user: string | undefined): { result: StateResult; events: ChangeEvent[] } {
    const secret = command['secret'];
    if (typeof secret !== 'string' || !SESSION_SECRET_PATTERN.test(secret)) return { result: this.refused('INVALID_ARGUMENT', 'secret must be 32 lowercase hex digits'), events: [] };
    if (command['op'] === 'registerClient') {
      const { nonce, sessionsMax } = command;
      if (nonce !== undefined && (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > 64)) return { result: this.refused('INVALID_ARGUMENT', 'nonce must be text of 1 to 64 characters'), events: [] };
      if (sessionsMax !== undefined && (!Number.isSafeInteger(sessionsMax) || (sessionsMax as number) < 1)) return { result: this.refused('INVALID_ARGUMENT', `sessionsMax must be a positive integer, got ${describe(sessionsMax)}`), events: [] };
      const registered = this.sessions.register(this.logTimeMsNow, secret, (nonce as string | undefined) ?? null, sessionsMax as number | undefined, user);
      if (!registered.ok) return { result: { ...this.refused(registered.code, registered.message), limit: 'sessionsMax' } as StateResult, events: [] };
      return { result: { ok: true, revision: this.revision, op: 'registerClient', clientId: registered.id, secret: registered.secret, existing: registered.existing }, events: [] };
    }
    const id = command['clientId'];
    if (!Number.isSafeInteger(id)) return { result: this.refused('INVALID_ARGUMENT', `clientId must be an integer, got ${describe(id)}`), events: [] };
    const kept = this.sessions.keepAlive(id as number, secret, this.logTimeMsNow);
    if (kept === 'expired') return { result: this.refused('SESSION_EXPIRED', `client session ${id as number} is unknown or expired`), events: [] };
    if (kept === 'unauthenticated') return { result: this.refused('UNAUTHENTICATED', `the keepalive does not carry client session ${id as number}'s secret`), events: [] };
    return { result: { ok: true, revision: this.revision, op: 'sessionKeepAlive' }, events: [] };
  }

  /** Delete the leases' nodes (one revision, if there were any) and forget the leases. */
  private endLeases(ids: number[], op: 'leaseRevoke' | 'leaseExpire'): { result: StateResult; events: ChangeEvent[] } {
    const leases = [...new Set(ids)].sort((a, b) => a - b);
    const { result, events } = this.namespace.deleteLeaseNodes(leases);
    for (const id of leases) this.leases.revoke(id);
    const deleted = result.ok && result.op === 'delete' ? result.deleted : 0;
    return { result: { ok: true, revision: this.revision, op, leases, deleted }, events };
  }

  private refused(code: ErrorCode, message: string): StateResult {
    return { ok: false, code, message, revision: this.revision };
  }
}

/** Whether a command would add data (what NO_SPACE refuses): a put, a create, a transaction that puts or creates, a lease grant. */
function addsData(command: Record<string, unknown>, leaseExists: (id: number) => boolean): boolean {
  const op = command['op'];
  if (op === 'put' || op === 'create') return true;
  // A retried grant of a lease that exists adds nothing, and must answer as it did: the lease is
  // there (a NO_SPACE refusal would tell the client it was never granted).
  if (op === 'leaseGrant') return !(Number.isSafeInteger(command['lease']) && leaseExists(command['lease'] as number));
  if (op !== 'txn') return false;
  const writes = (ops: unknown): boolean => Array.isArray(ops) && ops.some((o) => typeof o === 'object' && o !== null && ((o as { op?: unknown }).op === 'put' || (o as { op?: unknown }).op === 'create'));
  return writes(command['success']) || writes(command['failure']);
}
