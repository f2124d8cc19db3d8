/**
 * Auth on the client's side: the credentials a client connects with, the handshake that
 * presents them on every new socket (the Channel runs it before any request goes out, and again
 * on a socket whose identity lapsed), and the typed admin calls — `client.auth`, `client.users`,
 * `client.roles` — that turn auth on and off and manage users, roles and their permissions.
 *
 * Pattern: a hook on the Single-Socket Channel (a connection handshake); the admin calls are
 * writes through the log without a session stamp (Requests.unstamped: never re-sent once they
 * may have been applied).
 *
 * Must never: log or put in an error message a password or a token; send a password anywhere
 * but in `authenticate`; retry an admin change whose outcome is unknown.
 */

import { WardenError } from '../shared/errors.js';
import type { Answer } from './channel.js';
import type { Handshake } from './handshake.js';
import { errorOfAnswer, type CallOptions, type Requests } from './requests.js';

/** Who a client speaks as once auth is on: a user and password, or a token an earlier authentication answered. */
export type AuthCredentials = { readonly user: string; readonly password: string } | { readonly token: string };

/** What a role may do on a path and its whole subtree (`/`: everything); each level includes the ones before it. */
export type Access = 'read' | 'write' | 'admin';

export interface AuthStatus {
  readonly enabled: boolean;
  /** Counts the changes to users, roles and auth itself. */
  readonly authRevision: number;
  /** Whom this client's connection speaks as (null: nobody, or auth is off). */
  readonly user: string | null;
}

/** What an auth change answers: the cluster revision it was applied at, and the auth revision after it. */
export interface AuthChange {
  readonly revision: number;
  readonly authRevision: number;
}

export interface UserInfo {
  readonly name: string;
  readonly roles: readonly string[];
  /** Whether the user has a password (false: it authenticates by client certificate only). */
  readonly password: boolean;
}

export interface Permission {
  readonly path: string;
  readonly access: Access;
}

export interface RoleInfo {
  readonly name: string;
  readonly permissions: readonly Permission[];
}

/** The handshake of a client with credentials: `authenticate` first on every socket; keeps the token each answer carries. */
export class Authenticator implements Handshake {
  private password: string | null;
  private tokenHeld: string | null;
  private userName: string | null;

  constructor(credentials: AuthCredentials) {
    if ('token' in credentials) {
      if (typeof credentials.token !== 'string' || credentials.token === '') throw new Error('connect: auth.token must be a non-empty string');
      this.password = null;
      this.tokenHeld = credentials.token;
      this.userName = null;
    } else {
      if (typeof credentials.user !== 'string' || credentials.user === '' || typeof credentials.password !== 'string' || credentials.password === '') throw new Error('connect: auth needs a user and a password (non-empty strings), or a token');
      this.password = credentials.password;
      this.tokenHeld = null;
      this.userName = credentials.user;
    }
  }

  /** The token the last authentication answered (null before one, or while auth is off). */
  get token(): string | null {
    return this.tokenHeld;
  }

  /** The user the client authenticates as (known from the start with a password, from the answer with a token). */
  get user(): string | null {
    return this.userName;
  }

  /** The password when the client holds one (it is never answered back), else the token. */
  opening(): Record<string, unknown> | null {
    if (this.password !== null) return { type: 'authenticate', user: this.userName, password: this.password };
    return this.tokenHeld === null ? null : { type: 'authenticate', token: this.tokenHeld };
  }

  /** Only a password can renew a lapsed identity: a token that lapsed would be refused too. */
  renewal(): Record<string, unknown> | null {
    return this.password === null ? null : this.opening();
  }

  answered(answer: Answer): WardenError | null {
    if (answer.ok) {
      // Auth off at the members answers no token: the one held still opens a later socket.
      if (typeof answer['token'] === 'string' && answer['token'] !== '') this.tokenHeld = answer['token'];
      if (typeof answer['user'] === 'string') this.userName = answer['user'];
      return null;
    }
    const error = errorOfAnswer(answer);
    const who = this.userName === null ? 'with the token' : `as ${this.userName}`;
    return new WardenError(error.code, `authenticating ${who}: ${error.message}`, error.details);
  }

  /** The password held for `user`, if this client authenticates as it with one (a user changing its own password proves the old one). */
  passwordOf(user: string): string | null {
    return user === this.userName ? this.password : null;
  }

  /** The client changed a password: its own, held for the next authentication, follows. */
  passwordChanged(user: string, password: string): void {
    if (this.password !== null && user === this.userName) this.password = password;
  }
}

function change(answer: Answer): AuthChange {
  return { revision: answer['revision'] as number, authRevision: answer['authRevision'] as number };
}

/** `client.auth`: whether auth is on, and turning it on or off (both need admin on `/` once it is on). */
export class AuthAdmin {
  /** @internal */
  constructor(
    private readonly requests: Requests,
    private readonly authenticator: Authenticator | null,
  ) {}

  /** The user this client authenticates as, when it has credentials. */
  get user(): string | null {
    return this.authenticator?.user ?? null;
  }

  /** The token the last authentication answered: another process may connect with `{ token }` until it expires. */
  get token(): string | null {
    return this.authenticator?.token ?? null;
  }

  async status(call: CallOptions = {}): Promise<AuthStatus> {
    const answer = await this.requests.read({ type: 'authStatus' }, call);
    return { enabled: answer['enabled'] === true, authRevision: answer['authRevision'] as number, user: (answer['user'] as string | null | undefined) ?? null };
  }

  /** Turn auth on: from then every request needs a user (by password, token or client certificate). */
  async enable(call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'authEnable' }, call));
  }

  async disable(call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'authDisable' }, call));
  }
}

/** `client.users`: users, their passwords and roles. Changes need admin on `/` once auth is on. */
export class UserAdmin {
  /** @internal */
  constructor(
    private readonly requests: Requests,
    private readonly authenticator: Authenticator | null,
  ) {}

  /** Add a user; without a password it can only authenticate by a client certificate naming it (CN). */
  async add(name: string, password?: string, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'userAdd', name, ...(password === undefined ? {} : { password }) }, call));
  }

  async delete(name: string, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'userDelete', name }, call));
  }

  /**
   * Set a user's password: its identities from the old one lapse (this client's own follows, if
   * it is that user). A user who is not an admin may set only its own, proving the old one:
   * `oldPassword`, else the one this client holds for that user.
   */
  async passwd(name: string, password: string, call: CallOptions & { readonly oldPassword?: string } = {}): Promise<AuthChange> {
    const oldPassword = call.oldPassword ?? this.authenticator?.passwordOf(name) ?? null;
    const { oldPassword: _old, ...options } = call;
    const answer = await this.requests.unstamped({ type: 'userPasswd', name, password, ...(oldPassword === null ? {} : { oldPassword }) }, options);
    this.authenticator?.passwordChanged(name, password);
    return change(answer);
  }

  async grantRole(name: string, role: string, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'userGrantRole', name, role }, call));
  }

  async revokeRole(name: string, role: string, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'userRevokeRole', name, role }, call));
  }

  /** Every user, with its roles (needs admin on `/` once auth is on). */
  async list(call: CallOptions = {}): Promise<UserInfo[]> {
    const answer = await this.requests.read({ type: 'userList' }, call);
    return (answer['users'] as UserInfo[]).map((u) => ({ name: u.name, roles: [...u.roles], password: u.password }));
  }
}

/** `client.roles`: roles and the access they grant on paths. Changes need admin on `/` once auth is on. */
export class RoleAdmin {
  /** @internal */
  constructor(private readonly requests: Requests) {}

  async add(name: string, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'roleAdd', name }, call));
  }

  async delete(name: string, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'roleDelete', name }, call));
  }

  /** Grant `access` on `path` and its whole subtree (`/`: everything). */
  async grant(name: string, path: string, access: Access, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'roleGrant', name, path, access }, call));
  }

  async revoke(name: string, path: string, call: CallOptions = {}): Promise<AuthChange> {
    return change(await this.requests.unstamped({ type: 'roleRevoke', name, path }, call));
  }

  /** Every role, with its permissions (needs admin on `/` once auth is on). */
  async list(call: CallOptions = {}): Promise<RoleInfo[]> {
    const answer = await this.requests.read({ type: 'roleList' }, call);
    return (answer['roles'] as RoleInfo[]).map((r) => ({ name: r.name, permissions: r.permissions.map((p) => ({ path: p.path, access: p.access })) }));
  }
}
