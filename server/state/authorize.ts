/**
 * The permission check a committed entry meets before it is applied, while auth is enabled: the
 * user the entry carries (stamped by the member that took the request) must exist and hold, at
 * the entry's place in the log, what the command needs — read on every path a transaction
 * compares or gets, write on every path it changes (and on the highest ancestor a put, or a
 * create with parents, would make), ownership of the lease a node joins or a revoke ends, ownership of the
 * session a stamp names, admin on `/` for compaction and for auth changes (a user may change its
 * own password). Checked here, in apply order, a permission revoked before a write is committed
 * refuses the write on every member alike — the check a member makes on arrival only answers
 * early.
 *
 * Entries the leader proposes itself (lease expiry and refresh) carry no user and need none.
 *
 * Must never: read a clock or randomness; allow an entry without a user while auth is enabled,
 * unless it is one the leader proposes itself; change anything (it only answers).
 */

import type { ErrorCode } from '../../shared/errors.js';
import { parentOf, ROOT } from '../../shared/paths.js';
import { AUTH_OPS, ROOT_NAME, type Access, type AuthTable } from './auth.js';
import type { LeaseTable } from './leases.js';
import type { Namespace } from './namespace.js';
import type { SessionTable } from './sessions.js';

/** Proposed by the leader on its own, never for a client: no user to check. */
const SYSTEM_OPS: ReadonlySet<string> = new Set(['leaseExpire', 'leaseRefreshAll', 'malformedEntry', 'noop', 'memberChange', 'alarm', 'autoCompact']);

export interface Refusal {
  readonly code: ErrorCode;
  readonly message: string;
}

export interface AuthorizeContext {
  readonly auth: AuthTable;
  readonly leases: LeaseTable;
  readonly sessions: SessionTable;
  readonly namespace: Namespace;
}

/** Why `user` may not apply `command` (stamped with session `clientId`, if any), or null if it may. */
export function authorizeEntry(ctx: AuthorizeContext, command: unknown, user: string | undefined, clientId: number | undefined): Refusal | null {
  if (!ctx.auth.enabled) return null;
  const c = (typeof command === 'object' && command !== null ? command : {}) as Record<string, unknown>;
  const op = typeof c['op'] === 'string' ? c['op'] : '';
  if (SYSTEM_OPS.has(op) && user === undefined && clientId === undefined) return null;
  if (user === undefined) return { code: 'UNAUTHENTICATED', message: 'auth is enabled: authenticate before writing' };
  if (ctx.auth.user(user) === undefined) return { code: 'UNAUTHENTICATED', message: `the user ${user} no longer exists` };
  if (clientId !== undefined) {
    const owner = ctx.sessions.owner(clientId);
    if (owner !== undefined && owner !== user) return denied(`client session ${clientId} belongs to another user`);
  }
  if (AUTH_OPS.has(op)) {
    // A user may change its own password (the member that took it checked the old one), unless
    // it has none: a certificate-only user gets one from an admin.
    if (op === 'userPasswd' && c['name'] === user && user !== ROOT_NAME && ctx.auth.user(user)?.password !== null) return null;
    return need(ctx, user, ROOT, 'admin', `changing users, roles or auth`);
  }
  switch (op) {
    case 'create':
    case 'put':
    case 'delete':
      return writeOp(ctx, user, c);
    case 'txn':
      return txn(ctx, user, c);
    case 'compact':
      return need(ctx, user, ROOT, 'admin', 'compaction');
    case 'leaseRevoke': {
      // A lease made while auth was off belongs to no one: ending it deletes nodes anywhere, so
      // only an admin may.
      const id = c['lease'];
      if (typeof id === 'number' && ctx.leases.has(id) && ctx.leases.get(id)!.owner === undefined) return need(ctx, user, ROOT, 'admin', `revoking lease ${id}, which belongs to no one`);
      return leaseOwned(ctx, user, id);
    }
    case 'sessionKeepAlive': {
      const owner = typeof c['clientId'] === 'number' ? ctx.sessions.owner(c['clientId']) : undefined;
      return owner !== undefined && owner !== user ? denied(`client session ${String(c['clientId'])} belongs to another user`) : null;
    }
    case 'leaseGrant':
    case 'registerClient':
      return null;
    default:
      // Anything else (an op only the leader proposes, sent as a client's) is a user's to ask for
      // only with admin: the state machine refuses unknown ops itself.
      return need(ctx, user, ROOT, 'admin', `the operation ${op}`);
  }
}

function txn(ctx: AuthorizeContext, user: string, c: Record<string, unknown>): Refusal | null {
  for (const compare of asList(c['compare'])) {
    const refused = need(ctx, user, pathOf(compare), 'read', 'a compare');
    if (refused !== null) return refused;
  }
  // Both branches: which one runs must not decide whether the transaction was allowed.
  for (const op of [...asList(c['success']), ...asList(c['failure'])]) {
    const refused = op['op'] === 'get' ? need(ctx, user, pathOf(op), 'read', 'a get') : writeOp(ctx, user, op);
    if (refused !== null) return refused;
  }
  return null;
}

function writeOp(ctx: AuthorizeContext, user: string, op: Record<string, unknown>): Refusal | null {
  const path = pathOf(op);
  // A sequential create names a sibling of its path (`/q/job-` makes `/q/job-0000000007`): a
  // grant on the path itself does not cover it, one on the parent does.
  const base = op['op'] === 'create' && op['sequential'] === true ? (parentOf(path) ?? ROOT) : path;
  // A put makes missing ancestors, as a create with parents does: the highest one needs the grant.
  const makesParents = op['op'] === 'put' || (op['op'] === 'create' && op['parents'] === true);
  const missing = makesParents ? highestMissing(ctx.namespace, path) : path;
  const target = missing === path ? base : missing;
  const refused = need(ctx, user, target, 'write', target === path ? `${String(op['op'])}` : target === base ? `a sequential create under ${target}` : `creating the parent ${target}`);
  if (refused !== null) return refused;
  return op['lease'] === undefined ? null : leaseOwned(ctx, user, op['lease']);
}

/** The topmost ancestor of `path` a create with parents would make, else `path` itself. */
function highestMissing(namespace: Namespace, path: string): string {
  let missing = path;
  for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
    const ancestor = path.slice(0, cut);
    if (namespace.liveNode(ancestor) !== null) break;
    missing = ancestor;
  }
  return missing;
}

function leaseOwned(ctx: AuthorizeContext, user: string, leaseId: unknown): Refusal | null {
  if (typeof leaseId !== 'number') return null; // the state machine refuses the shape
  const owner = ctx.leases.get(leaseId)?.owner;
  if (owner === undefined || owner === null || owner === user || ctx.auth.isAdmin(user)) return null;
  return denied(`lease ${leaseId} belongs to another user`);
}

function need(ctx: AuthorizeContext, user: string, path: string, access: Access, what: string): Refusal | null {
  if (ctx.auth.may(user, path, access)) return null;
  return denied(`the user ${user} has no ${access} permission on ${path} (needed for ${what})`);
}

function denied(message: string): Refusal {
  return { code: 'PERMISSION_DENIED', message };
}

function pathOf(value: Record<string, unknown>): string {
  return typeof value['path'] === 'string' ? value['path'] : ROOT;
}

function asList(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? (value.filter((v) => typeof v === 'object' && v !== null) as Record<string, unknown>[]) : [];
}
