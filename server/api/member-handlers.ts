/**
 * The membership requests: `memberList`, and `memberAdd`, `memberPromote`, `memberRemove`, which
 * only the leader takes (another member answers NOT_LEADER with its hint) and which need admin
 * on `/` once auth is on. A member is added as a learner; `memberAdd { learner: false }` then
 * waits (bounded) for it to catch up and promotes it. A removed member's name is never used
 * again. Every change is audited.
 *
 * Must never: answer "retry" for a change that may have been applied; wait without a bound.
 */

import type { AuditLog } from '../auth/audit.js';
import type { AuthConnection } from '../auth/gate.js';
import type { ConfChange } from '../raft/conf.js';
import { ConfChangeRefused, type MemberRuntime } from '../node/runtime.js';
import { RequestError } from '../node/waiting-list.js';
import { errorFrame } from './wire.js';

type Answer = Record<string, unknown>;

/** How long `memberAdd { learner: false }` waits for the learner to catch up before it gives up promoting it. */
const PROMOTE_WAIT_MS = 60_000;
const PROMOTE_RETRY_MS = 200;

export interface MemberHandlerDeps {
  readonly runtime: Pick<MemberRuntime, 'proposeConfChange' | 'members' | 'machine' | 'status'>;
  readonly audit: AuditLog;
  /** Whether `user` may change the cluster (admin on `/`, or auth off). */
  readonly isAdmin: (user: string | undefined) => boolean;
  /** A member's client URL (for NOT_LEADER hints and the member list). */
  readonly leaderUrl: (leader: string) => string | null;
}

export type MemberRequest = (frame: Record<string, unknown>, connection: AuthConnection, user: string | undefined) => Promise<Answer> | Answer;

export function createMemberHandlers(deps: MemberHandlerDeps): Record<'memberList' | 'memberAdd' | 'memberPromote' | 'memberRemove', MemberRequest> {
  const { runtime, audit } = deps;
  const refused = (error: unknown): Answer => {
    if (error instanceof ConfChangeRefused) return errorFrame('INVALID_ARGUMENT', error.reason);
    if (error instanceof RequestError) return errorFrame(error.code, error.message, error.leaderHint === null ? {} : { leader: { name: error.leaderHint, url: deps.leaderUrl(error.leaderHint) } });
    return errorFrame('OUTCOME_UNKNOWN', (error as Error).message);
  };
  const memberOf = (name: string): Answer => {
    const member = runtime.members().find((m) => m.name === name);
    return member === undefined ? { name, role: null, peerUrl: null } : { name, role: member.role, peerUrl: member.peerUrl };
  };
  /** One change, proposed and audited; the answer names the member as it now stands. */
  const change = async (connection: AuthConnection, user: string | undefined, action: string, conf: ConfChange): Promise<Answer> => {
    if (!deps.isAdmin(user)) return errorFrame('PERMISSION_DENIED', `the user ${String(user)} has no admin permission on / (needed to change the cluster's members)`);
    let answer: Answer;
    try {
      const result = await runtime.proposeConfChange(conf);
      answer = { ok: true, revision: result.revision, member: memberOf(conf.id) };
    } catch (error) {
      answer = refused(error);
    }
    const error = answer['error'] as { code?: string; message?: string } | undefined;
    audit.record({ action, user: user ?? null, source: connection.source, outcome: answer['ok'] === true ? 'ok' : 'refused', target: { member: conf.id, ...(conf.op === 'addLearner' && conf.peerUrl !== undefined ? { peerUrl: conf.peerUrl } : {}) }, ...(error === undefined ? {} : { code: error.code ?? '', reason: error.message ?? '' }) });
    return answer;
  };

  return {
    memberList: () => ({ ok: true, revision: runtime.machine.revision, members: runtime.members().map((m) => ({ ...m, clientUrl: deps.leaderUrl(m.name) })) }),
    memberAdd: async (f, connection, user) => {
      const name = f['name'] as string;
      if (runtime.machine.members.wasRemoved(name)) return errorFrame('INVALID_ARGUMENT', `${name} was removed from this cluster, and a name is never used again: give the new member a new name`);
      const added = await change(connection, user, 'memberAdd', { op: 'addLearner', id: name, peerUrl: f['peerUrl'] as string });
      if (added['ok'] !== true || f['learner'] !== false) return added;
      // Promoted once it has caught up: until then the core refuses it (too far behind).
      const deadline = Date.now() + PROMOTE_WAIT_MS;
      for (;;) {
        const promoted = await change(connection, user, 'memberPromote', { op: 'promote', id: name });
        const error = promoted['error'] as { code?: string; message?: string } | undefined;
        const notYet = error?.code === 'INVALID_ARGUMENT' && /behind|not committed/.test(error.message ?? '');
        if (!notYet || Date.now() > deadline) return promoted;
        await new Promise((resolve) => setTimeout(resolve, PROMOTE_RETRY_MS));
      }
    },
    memberPromote: (f, connection, user) => change(connection, user, 'memberPromote', { op: 'promote', id: f['name'] as string }),
    memberRemove: (f, connection, user) => change(connection, user, 'memberRemove', { op: 'remove', id: f['name'] as string }),
  };
}
