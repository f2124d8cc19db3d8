/**
 * `client.members`: the cluster's membership as its leader holds it, and the changes to it — add
 * a member (a learner first, promoted once it has caught up unless it is to stay a learner),
 * promote a learner, remove a member. Only the leader answers these; another member refuses
 * NOT_LEADER with a hint the request layer follows.
 *
 * Pattern: typed admin calls over Requests, as auth.ts does for users and roles: the list is a
 * read (retried freely); a change is a write through the log without a session stamp
 * (Requests.unstamped: retried only while it certainly was not applied).
 *
 * Must never: send a change again once it may have reached a member (a repeated add or remove
 * could change the cluster twice, and a removed name can never be used again); import server/ or
 * a Node builtin.
 */

import type { Answer } from './channel.js';
import type { CallOptions, Requests } from './requests.js';

/** A voter votes and counts towards the quorum; a learner only receives the log. */
export type MemberRole = 'voter' | 'learner';

/** An active alarm: NO_SPACE — `member`'s store passed the space quota; writes that add data are refused until it clears by itself. */
export interface AlarmInfo {
  readonly member: string;
  readonly kind: 'NO_SPACE';
  /** Log time (ms since the epoch) it was raised. */
  readonly raisedAtMs: number;
  /** What the member measured, and its quota, when it raised it. */
  readonly usedBytes: number;
  readonly quotaBytes: number;
}

/** One member, as the leader sees it. */
export interface MemberInfo {
  readonly name: string;
  readonly role: MemberRole;
  /** Where its peers reach it (null: not known to the leader). */
  readonly peerUrl: string | null;
  /** Where clients reach it (null: not known to the leader). */
  readonly clientUrl: string | null;
  readonly isLeader: boolean;
  /** Log entries it is behind the leader (null: the leader does not know, e.g. it has not heard from it). */
  readonly lag: number | null;
}

/** What a membership change answers: the revision it was applied at, and the member as it now stands. */
export interface MemberChange {
  readonly revision: number;
  /** `role` null: no longer a member (after a remove; its peer URL may be null too). */
  readonly member: { readonly name: string; readonly role: MemberRole | null; readonly peerUrl: string | null };
}

export interface MemberAddOptions extends CallOptions {
  /**
   * Leave it a learner (true), or wait until it has caught up and promote it to a voter (false,
   * the default, as `warden member add` does). Waiting can take a while: without its own
   * `timeoutMs` such a call gets at least PROMOTE_DEADLINE_MS.
   */
  readonly learner?: boolean;
}

/**
 * The least deadline of an add that waits for the new member to catch up (a log to stream,
 * perhaps a snapshot). The leader gives up promoting after about a minute and says so; the
 * client waits longer, to hear that answer rather than end OUTCOME_UNKNOWN just before it.
 */
export const PROMOTE_DEADLINE_MS = 75_000;

function role(value: unknown): MemberRole {
  return value === 'learner' ? 'learner' : 'voter';
}

const urlOf = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);

function change(answer: Answer): MemberChange {
  const m = (answer['member'] ?? {}) as Record<string, unknown>;
  // A removed member has no role left (the leader answers null): never read as a voter.
  const now = m['role'] === 'voter' || m['role'] === 'learner' ? m['role'] : null;
  return { revision: answer['revision'] as number, member: { name: m['name'] as string, role: now, peerUrl: urlOf(m['peerUrl']) } };
}

/** `client.members`: list the members, add, promote and remove them (the changes need admin on `/` once auth is on). */
export class MemberAdmin {
  /** @internal */
  constructor(
    private readonly requests: Requests,
    /** The client's own default deadline: an add that waits for promotion never gets less. */
    private readonly defaultTimeoutMs: number,
  ) {}

  /** Every member, voters and learners, in the leader's order, with who leads and how far behind each is. */
  async list(call: CallOptions = {}): Promise<MemberInfo[]> {
    const answer = await this.requests.read({ type: 'memberList' }, call);
    return (answer['members'] as Record<string, unknown>[]).map((m) => ({
      name: m['name'] as string,
      role: role(m['role']),
      peerUrl: urlOf(m['peerUrl']),
      clientUrl: urlOf(m['clientUrl']),
      isLeader: m['isLeader'] === true,
      lag: typeof m['lag'] === 'number' ? m['lag'] : null,
    }));
  }

  /**
   * Add a member that listens for its peers at `peerUrl`. It joins as a learner; unless
   * `learner: true`, the leader promotes it to a voter once it has caught up, and answers then.
   * An add that fails once sent may have left it a learner: `list()` tells, `promote()` finishes.
   */
  async add(name: string, peerUrl: string, options: MemberAddOptions = {}): Promise<MemberChange> {
    const { learner = false, ...call } = options;
    if (learner) return change(await this.requests.unstamped({ type: 'memberAdd', name, peerUrl, learner: true }, call));
    const timeoutMs = call.timeoutMs ?? Math.max(this.defaultTimeoutMs, PROMOTE_DEADLINE_MS);
    // The leader says nothing about this request until the learner has caught up: the attempt
    // deadline is the whole call's, or the channel would leave a member rightly busy waiting
    // (and the add, already sent, would end OUTCOME_UNKNOWN).
    const answer = await this.requests.unstamped({ type: 'memberAdd', name, peerUrl, learner: false }, { ...call, timeoutMs }, { attemptMs: timeoutMs });
    return change(answer);
  }

  /** Make a learner a voter: refused INVALID_ARGUMENT while it is too far behind the leader. */
  async promote(name: string, call: CallOptions = {}): Promise<MemberChange> {
    return change(await this.requests.unstamped({ type: 'memberPromote', name }, call));
  }

  /** Remove a member (the leader itself too: it hands over first). Its name is never used again. */
  async remove(name: string, call: CallOptions = {}): Promise<MemberChange> {
    return change(await this.requests.unstamped({ type: 'memberRemove', name }, call));
  }
}
