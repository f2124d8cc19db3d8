/**
 * The auth requests: `authenticate` and `authStatus` (no credentials needed), and the changes to
 * users, roles and auth itself, which go through the log like any write (the state machine
 * checks, at their place in the log, that their user holds admin on `/`). A password is hashed
 * here, on the member that took the request, before anything is proposed: the log carries only
 * the hash. The token key is drawn here too, when auth is enabled. Lists are read linearizably
 * and need admin. Every change and every login is written to the audit log.
 *
 * Must never: propose a password in clear; answer a list to a user without admin; let the answer
 * to a change say it applied before it did.
 */

import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '../../shared/errors.js';
import { checkPath } from '../../shared/paths.js';
import type { AuditLog } from '../auth/audit.js';
import type { AuthConnection, AuthGate } from '../auth/gate.js';
import { QueueFull, type PasswordHasher } from '../auth/passwords.js';
import type { AuthCommand } from '../state/auth.js';
import type { StateMachine, StateResult } from '../state/state-machine.js';
import type { Limits } from '../limits.js';
import { errorFrame } from './wire.js';

type Answer = Record<string, unknown>;

export interface AuthHandlerDeps {
  readonly gate: AuthGate;
  readonly hasher: PasswordHasher;
  readonly audit: AuditLog;
  readonly limits: Limits;
  readonly machine: () => StateMachine;
  /** Propose a write as `user`; answers the state machine's result as a frame. */
  readonly write: (command: AuthCommand, user: string | undefined, shape?: (result: StateResult) => Answer) => Promise<Answer>;
  /** Serve `serve` linearizably (after a read barrier). */
  readonly readLinearizable: (serve: (machine: StateMachine) => Answer) => Promise<Answer>;
}

export type AuthRequest = (frame: Record<string, unknown>, connection: AuthConnection, user: string | undefined) => Promise<Answer> | Answer;

/** Request types that need no credentials (everything else does, once auth is on). */
export const OPEN_REQUESTS: ReadonlySet<string> = new Set(['authenticate', 'authStatus', 'status']);

export const AUTH_REQUEST_TYPES = ['authenticate', 'authStatus', 'authEnable', 'authDisable', 'userAdd', 'userDelete', 'userPasswd', 'userGrantRole', 'userRevokeRole', 'userList', 'roleAdd', 'roleDelete', 'roleGrant', 'roleRevoke', 'roleList'] as const;
export type AuthRequestType = (typeof AUTH_REQUEST_TYPES)[number];

export function createAuthHandlers(deps: AuthHandlerDeps): Record<AuthRequestType, AuthRequest> {
  const { gate, audit, limits } = deps;

  /** A change, proposed as `user`, and its outcome audited. */
  const change = async (connection: AuthConnection, user: string | undefined, command: AuthCommand, target: Record<string, unknown>): Promise<Answer> => {
    const answer = await deps.write(command, user);
    const error = answer['error'] as { code?: string; message?: string } | undefined;
    audit.record({ action: command.op, user: user ?? null, source: connection.source, outcome: answer['ok'] === true ? 'ok' : 'refused', target, ...(error === undefined ? {} : { code: error.code ?? '', reason: error.message ?? '' }) });
    return answer;
  };
  const hashed = async (password: unknown): Promise<string | Answer> => {
    try {
      return await deps.hasher.hash(password as string);
    } catch (error) {
      if (error instanceof QueueFull) return errorFrame('RESOURCE_EXHAUSTED', `${error.message} on this member (--max-auth-queue): try again shortly`);
      throw error;
    }
  };
  /**
   * Before a password is hashed (the member's costliest work for a request), whether `user` may
   * make the change at all, by this member's state: refused early if not. The state machine
   * checks again where the change lands in the log.
   */
  const mayHash = async (connection: AuthConnection, user: string | undefined, f: Record<string, unknown>): Promise<Answer | null> => {
    const auth = deps.machine().auth;
    if (!auth.enabled || (user !== undefined && auth.isAdmin(user))) return null;
    if (user === undefined) return errorFrame('UNAUTHENTICATED', 'auth is enabled: authenticate first');
    if (f['type'] !== 'userPasswd' || f['name'] !== user) return errorFrame('PERMISSION_DENIED', `the user ${user} has no admin permission on / (needed for ${String(f['type'])} of ${String(f['name'])})`);
    if (auth.user(user)?.password === null) return errorFrame('PERMISSION_DENIED', `the user ${user} comes in by client certificate only: an admin gives it a password`);
    if (typeof f['oldPassword'] !== 'string') return errorFrame('INVALID_ARGUMENT', 'oldPassword: a user changes its own password with the one it has');
    const proved = await gate.proves(connection, user, f['oldPassword']);
    return proved.ok ? null : errorFrame(proved.code, proved.message);
  };
  const adminOnly = (user: string | undefined, serve: (machine: StateMachine) => Answer): Promise<Answer> =>
    deps.readLinearizable((machine) => {
      // In the state machine's shape (the read path turns it into an error frame).
      if (machine.auth.enabled && (user === undefined || !machine.auth.isAdmin(user))) return { ok: false, code: 'PERMISSION_DENIED', message: `the user ${user} has no admin permission on / (needed to list users and roles)`, revision: machine.revision };
      return serve(machine);
    });

  return {
    authenticate: async (f, connection) => {
      const auth = deps.machine().auth;
      if (!auth.enabled) return { ok: true, enabled: false, user: null, token: null };
      let login;
      if (typeof f['token'] === 'string') login = gate.token(connection, f['token']);
      else if (typeof f['user'] === 'string' && typeof f['password'] === 'string') login = await gate.password(connection, f['user'], f['password']);
      else return errorFrame('INVALID_ARGUMENT', 'authenticate needs a user and a password, or a token');
      if (!login.ok) return errorFrame(login.code as ErrorCode, login.message);
      return { ok: true, enabled: true, user: login.user, token: login.token, ttlMs: login.ttlMs };
    },
    authStatus: (_f, connection) => {
      const auth = deps.machine().auth;
      const who = gate.whoIs(connection);
      return { ok: true, enabled: auth.enabled, authRevision: auth.revision, user: who.ok ? (who.user ?? null) : null };
    },
    authEnable: (_f, connection, user) => change(connection, user, { op: 'authEnable', tokenKey: randomBytes(32).toString('hex') }, {}),
    authDisable: (_f, connection, user) => change(connection, user, { op: 'authDisable' }, {}),
    userAdd: async (f, connection, user) => {
      const early = f['password'] === undefined ? null : await mayHash(connection, user, f);
      if (early !== null) return early;
      const password = f['password'] === undefined ? null : await hashed(f['password']);
      if (password !== null && typeof password !== 'string') return password;
      return change(connection, user, { op: 'userAdd', name: f['name'] as string, password, usersMax: limits.usersMax }, { user: f['name'], password: password !== null });
    },
    userDelete: (f, connection, user) => change(connection, user, { op: 'userDelete', name: f['name'] as string }, { user: f['name'] }),
    userPasswd: async (f, connection, user) => {
      const early = await mayHash(connection, user, f);
      if (early !== null) return early;
      const password = await hashed(f['password']);
      if (typeof password !== 'string') return password;
      return change(connection, user, { op: 'userPasswd', name: f['name'] as string, password }, { user: f['name'] });
    },
    userGrantRole: (f, connection, user) => change(connection, user, { op: 'userGrantRole', name: f['name'] as string, role: f['role'] as string, userRolesMax: limits.userRolesMax }, { user: f['name'], role: f['role'] }),
    userRevokeRole: (f, connection, user) => change(connection, user, { op: 'userRevokeRole', name: f['name'] as string, role: f['role'] as string }, { user: f['name'], role: f['role'] }),
    roleAdd: (f, connection, user) => change(connection, user, { op: 'roleAdd', name: f['name'] as string, rolesMax: limits.rolesMax }, { role: f['name'] }),
    roleDelete: (f, connection, user) => change(connection, user, { op: 'roleDelete', name: f['name'] as string }, { role: f['name'] }),
    roleGrant: (f, connection, user) => {
      const checked = checkPath(f['path'] as string);
      if (!checked.ok) return errorFrame('INVALID_ARGUMENT', checked.error.message);
      return change(connection, user, { op: 'roleGrant', name: f['name'] as string, path: f['path'] as string, access: f['access'] as 'read', rolePermissionsMax: limits.rolePermissionsMax }, { role: f['name'], path: f['path'], access: f['access'] });
    },
    roleRevoke: (f, connection, user) => change(connection, user, { op: 'roleRevoke', name: f['name'] as string, path: f['path'] as string }, { role: f['name'], path: f['path'] }),
    userList: (_f, _connection, user) => adminOnly(user, (machine) => ({ ok: true, authRevision: machine.auth.revision, users: machine.auth.userList().map((u) => ({ name: u.name, roles: u.roles, password: u.password !== null })) })),
    roleList: (_f, _connection, user) => adminOnly(user, (machine) => ({ ok: true, authRevision: machine.auth.revision, roles: machine.auth.roleList() })),
  };
}
