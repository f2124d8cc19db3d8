/**
 * Who may do what: the replicated table of users, roles and their permissions on path prefixes
 * (etcd's role-based access on key prefixes, with ZooKeeper's tree: a grant on `/app` covers
 * `/app` and everything under it, never `/apple`), and whether checking is on. It is state like
 * any other — changed only by committed entries, the same on every member, kept in the store and
 * in snapshots — so a new leader enforces exactly what the old one did.
 *
 * Passwords arrive already hashed (scrypt, salted, by the member that took the request): the log
 * never holds one in clear. Every change bumps the auth revision; a user's own revision moves
 * when its password changes, which revokes the tokens issued to it (server/auth/tokens.ts).
 * The user `root` and the built-in role `root` may do everything; `auth enable` needs the user.
 *
 * Must never: read a clock or randomness; let a lookup cost more than the path's depth (a user's
 * grants are compiled to a tree once per auth revision); grow past its limits.
 */

import type { ErrorCode } from '../../shared/errors.js';
import { ROOT } from '../../shared/paths.js';
import type { ChangeTracker } from './changes.js';

export type Access = 'read' | 'write' | 'admin';
export const ACCESS_LEVELS: readonly Access[] = ['read', 'write', 'admin'];
const RANK: Readonly<Record<Access, number>> = { read: 1, write: 2, admin: 3 };

/** The user and the role that may do everything. */
export const ROOT_NAME = 'root';

/** What the table holds whatever a proposer asks (the ceilings of the --max-users … flags). */
export const AUTH_CEILINGS = { usersMax: 100_000, rolesMax: 100_000, rolePermissionsMax: 100_000, userRolesMax: 10_000 } as const;
export type AuthLimitName = keyof typeof AUTH_CEILINGS;

/** A user or role name: printable ASCII without spaces (a certificate's CN fits). */
export const AUTH_NAME_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** A stored password: the scrypt parameters, salt and hash, as server/auth/passwords.ts writes them. */
const PASSWORD_PATTERN = /^scrypt\$\d{1,7}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9+/=]{8,64}\$[A-Za-z0-9+/=]{16,128}$/;
const TOKEN_KEY_PATTERN = /^[0-9a-f]{64}$/;

export interface Permission {
  readonly path: string;
  readonly access: Access;
}

export interface UserRecord {
  readonly name: string;
  /** The scrypt hash, or null: the user authenticates by client certificate only. */
  readonly password: string | null;
  /** Sorted. */
  readonly roles: readonly string[];
  /** The auth revision of the user's last password change (or creation): older tokens are void. */
  readonly revision: number;
}

export interface RoleRecord {
  readonly name: string;
  /** Sorted by path, one access per path. */
  readonly permissions: readonly Permission[];
}

export interface AuthImage {
  readonly enabled: boolean;
  readonly tokenKey: string | null;
  readonly revision: number;
  readonly users: readonly UserRecord[];
  readonly roles: readonly RoleRecord[];
}

export type AuthCommand =
  | { readonly op: 'authEnable'; readonly tokenKey: string }
  | { readonly op: 'authDisable' }
  | { readonly op: 'userAdd'; readonly name: string; readonly password: string | null; readonly usersMax?: number }
  | { readonly op: 'userDelete'; readonly name: string }
  | { readonly op: 'userPasswd'; readonly name: string; readonly password: string | null }
  | { readonly op: 'userGrantRole'; readonly name: string; readonly role: string; readonly userRolesMax?: number }
  | { readonly op: 'userRevokeRole'; readonly name: string; readonly role: string }
  | { readonly op: 'roleAdd'; readonly name: string; readonly rolesMax?: number }
  | { readonly op: 'roleDelete'; readonly name: string }
  | { readonly op: 'roleGrant'; readonly name: string; readonly path: string; readonly access: Access; readonly rolePermissionsMax?: number }
  | { readonly op: 'roleRevoke'; readonly name: string; readonly path: string };

export const AUTH_OPS: ReadonlySet<string> = new Set(['authEnable', 'authDisable', 'userAdd', 'userDelete', 'userPasswd', 'userGrantRole', 'userRevokeRole', 'roleAdd', 'roleDelete', 'roleGrant', 'roleRevoke']);

export type AuthAnswer = { readonly ok: true; readonly authRevision: number } | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly limit?: AuthLimitName };

/** A user's grants as a tree of path segments: a lookup walks the path once. */
interface Grants {
  access: number;
  readonly children: Map<string, Grants>;
}

export class AuthTable {
  private enabledNow = false;
  private tokenKeyNow: string | null = null;
  private revisionNow = 0;
  private readonly users = new Map<string, UserRecord>();
  private readonly roles = new Map<string, Map<string, Access>>();
  /** Compiled grants by user, for this auth revision (cleared on every change). */
  private readonly compiled = new Map<string, Grants>();

  constructor(private readonly changes: ChangeTracker | null = null) {}

  static restore(image: AuthImage, changes: ChangeTracker | null = null): AuthTable {
    const table = new AuthTable(changes);
    table.enabledNow = image.enabled;
    table.tokenKeyNow = image.tokenKey;
    table.revisionNow = image.revision;
    for (const user of image.users) table.users.set(user.name, user);
    for (const role of image.roles) table.roles.set(role.name, new Map(role.permissions.map((p) => [p.path, p.access])));
    return table;
  }

  get enabled(): boolean {
    return this.enabledNow;
  }

  /** The key tokens are signed with (drawn by the member that proposed `authEnable`). */
  get tokenKey(): string | null {
    return this.tokenKeyNow;
  }

  get revision(): number {
    return this.revisionNow;
  }

  user(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  /** Every user, by name. */
  userList(): UserRecord[] {
    return [...this.users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every role with its permissions, by name. */
  roleList(): RoleRecord[] {
    return [...this.roles.keys()].sort().map((name) => this.role(name)!);
  }

  role(name: string): RoleRecord | undefined {
    const permissions = this.roles.get(name);
    if (permissions === undefined) return undefined;
    return { name, permissions: [...permissions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, access]) => ({ path, access })) };
  }

  /** The whole table, for a state store and for comparing replicas. */
  image(): AuthImage {
    return { enabled: this.enabledNow, tokenKey: this.tokenKeyNow, revision: this.revisionNow, users: this.userList(), roles: this.roleList() };
  }

  /** Whether `user` holds `need` (or more) on `path`: a grant on a path covers its subtree. */
  may(user: string, path: string, need: Access): boolean {
    return this.accessAt(user, path) >= RANK[need];
  }

  /** Whether `user` may do everything (root, or admin on `/`). */
  isAdmin(user: string): boolean {
    return this.may(user, ROOT, 'admin');
  }

  private accessAt(user: string, path: string): number {
    let grants = this.compiled.get(user);
    if (grants === undefined) {
      grants = this.compile(user);
      this.compiled.set(user, grants);
    }
    let best = grants.access;
    if (best === RANK.admin || path === ROOT) return best;
    let node: Grants | undefined = grants;
    let start = 1;
    while (node !== undefined && start <= path.length) {
      let end = path.indexOf('/', start);
      if (end === -1) end = path.length;
      node = node.children.get(path.slice(start, end));
      if (node !== undefined && node.access > best) best = node.access;
      start = end + 1;
    }
    return best;
  }

  private compile(name: string): Grants {
    const top: Grants = { access: 0, children: new Map() };
    const user = this.users.get(name);
    if (user === undefined) return top;
    if (name === ROOT_NAME) {
      top.access = RANK.admin;
      return top;
    }
    for (const roleName of user.roles) {
      if (roleName === ROOT_NAME) top.access = RANK.admin;
      const permissions = this.roles.get(roleName);
      if (permissions === undefined) continue;
      for (const [path, access] of permissions) {
        let node = top;
        if (path !== ROOT) {
          for (const segment of path.slice(1).split('/')) {
            let next = node.children.get(segment);
            if (next === undefined) node.children.set(segment, (next = { access: 0, children: new Map() }));
            node = next;
          }
        }
        node.access = Math.max(node.access, RANK[access]);
      }
    }
    return top;
  }

  apply(command: AuthCommand): AuthAnswer {
    // Fields read as what they may be: the command came out of the log, not out of a type.
    const c: Readonly<Record<string, unknown>> = { ...command };
    const bad = nameProblem(c['name'], command.op === 'authEnable' || command.op === 'authDisable');
    if (bad !== null) return bad;
    switch (command.op) {
      case 'authEnable': {
        if (typeof c['tokenKey'] !== 'string' || !TOKEN_KEY_PATTERN.test(c['tokenKey'])) return invalid('tokenKey must be 64 lowercase hex digits');
        if (!this.users.has(ROOT_NAME)) return invalid(`add the user ${ROOT_NAME} before enabling auth (it may do everything, so someone can always undo a mistake)`);
        this.enabledNow = true;
        this.tokenKeyNow = command.tokenKey;
        return this.changed();
      }
      case 'authDisable':
        this.enabledNow = false;
        return this.changed();
      case 'userAdd': {
        if (this.users.has(command.name)) return invalid(`the user ${command.name} exists`);
        const password = passwordProblem(c['password']);
        if (password !== null) return password;
        const max = bound(c['usersMax'], 'usersMax');
        if (typeof max !== 'number') return max;
        if (this.users.size >= max) return exhausted('usersMax', `${this.users.size} users exist, the most this cluster keeps (${max})`);
        this.users.set(command.name, { name: command.name, password: command.password, roles: [], revision: this.revisionNow + 1 });
        return this.changed();
      }
      case 'userDelete': {
        if (!this.users.has(command.name)) return invalid(`no user ${command.name}`);
        if (command.name === ROOT_NAME && this.enabledNow) return invalid(`the user ${ROOT_NAME} cannot be deleted while auth is enabled`);
        this.users.delete(command.name);
        return this.changed();
      }
      case 'userPasswd': {
        const user = this.users.get(command.name);
        if (user === undefined) return invalid(`no user ${command.name}`);
        const password = passwordProblem(c['password']);
        if (password !== null) return password;
        this.users.set(command.name, { ...user, password: command.password, revision: this.revisionNow + 1 });
        return this.changed();
      }
      case 'userGrantRole': {
        const user = this.users.get(command.name);
        if (user === undefined) return invalid(`no user ${command.name}`);
        const role = nameProblem(c['role'], false, 'role');
        if (role !== null) return role;
        if (command.role !== ROOT_NAME && !this.roles.has(command.role)) return invalid(`no role ${command.role}`);
        if (user.roles.includes(command.role)) return this.unchanged();
        const max = bound(c['userRolesMax'], 'userRolesMax');
        if (typeof max !== 'number') return max;
        if (user.roles.length >= max) return exhausted('userRolesMax', `the user ${command.name} holds ${user.roles.length} roles, the most one user may (${max})`);
        this.users.set(command.name, { ...user, roles: [...user.roles, command.role].sort() });
        return this.changed();
      }
      case 'userRevokeRole': {
        const user = this.users.get(command.name);
        if (user === undefined) return invalid(`no user ${command.name}`);
        if (!user.roles.includes(command.role)) return invalid(`the user ${command.name} does not hold the role ${String(command.role)}`);
        this.users.set(command.name, { ...user, roles: user.roles.filter((r) => r !== command.role) });
        return this.changed();
      }
      case 'roleAdd': {
        if (command.name === ROOT_NAME || this.roles.has(command.name)) return invalid(`the role ${command.name} exists`);
        const max = bound(c['rolesMax'], 'rolesMax');
        if (typeof max !== 'number') return max;
        if (this.roles.size >= max) return exhausted('rolesMax', `${this.roles.size} roles exist, the most this cluster keeps (${max})`);
        this.roles.set(command.name, new Map());
        return this.changed();
      }
      case 'roleDelete': {
        if (command.name === ROOT_NAME) return invalid(`the role ${ROOT_NAME} is built in`);
        if (!this.roles.delete(command.name)) return invalid(`no role ${command.name}`);
        for (const user of this.users.values()) {
          if (user.roles.includes(command.name)) this.users.set(user.name, { ...user, roles: user.roles.filter((r) => r !== command.name) });
        }
        return this.changed();
      }
      case 'roleGrant': {
        const permissions = this.roles.get(command.name);
        if (permissions === undefined) return invalid(command.name === ROOT_NAME ? `the role ${ROOT_NAME} is built in (it may do everything)` : `no role ${command.name}`);
        if (typeof c['path'] !== 'string' || !isCanonicalPath(c['path'])) return invalid(`path must be an absolute path such as /app/config, got ${JSON.stringify(c['path'])}`);
        if (!ACCESS_LEVELS.includes(c['access'] as Access)) return invalid(`access must be read, write or admin, got ${JSON.stringify(c['access'])}`);
        if (permissions.get(command.path) === command.access) return this.unchanged();
        const max = bound(c['rolePermissionsMax'], 'rolePermissionsMax');
        if (typeof max !== 'number') return max;
        if (!permissions.has(command.path) && permissions.size >= max) return exhausted('rolePermissionsMax', `the role ${command.name} holds ${permissions.size} permissions, the most one role may (${max})`);
        permissions.set(command.path, command.access);
        return this.changed();
      }
      case 'roleRevoke': {
        const permissions = this.roles.get(command.name);
        if (permissions === undefined) return invalid(`no role ${command.name}`);
        if (typeof c['path'] !== 'string' || !permissions.delete(c['path'])) return invalid(`the role ${command.name} holds no permission on ${JSON.stringify(c['path'])}`);
        return this.changed();
      }
      default:
        return invalid(`unknown operation ${JSON.stringify((command as { op?: unknown }).op)}`);
    }
  }

  private changed(): AuthAnswer {
    this.revisionNow += 1;
    this.compiled.clear();
    if (this.changes !== null) this.changes.auth = true;
    return { ok: true, authRevision: this.revisionNow };
  }

  private unchanged(): AuthAnswer {
    return { ok: true, authRevision: this.revisionNow };
  }
}

function invalid(message: string): AuthAnswer {
  return { ok: false, code: 'INVALID_ARGUMENT', message };
}

function exhausted(limit: AuthLimitName, message: string): AuthAnswer {
  return { ok: false, code: 'RESOURCE_EXHAUSTED', message, limit };
}

/** The proposer's bound, never above the ceiling; a bad one refuses the command. */
function bound(value: unknown, name: AuthLimitName): number | AuthAnswer {
  if (value === undefined) return AUTH_CEILINGS[name];
  if (!Number.isSafeInteger(value) || (value as number) < 1) return invalid(`${name} must be a positive integer`);
  return Math.min(value as number, AUTH_CEILINGS[name]);
}

function nameProblem(name: unknown, absent: boolean, what = 'name'): AuthAnswer | null {
  if (absent) return null;
  if (typeof name !== 'string' || !AUTH_NAME_PATTERN.test(name)) return invalid(`${what} must be 1 to 128 printable ASCII characters without spaces`);
  return null;
}

function passwordProblem(password: unknown): AuthAnswer | null {
  if (password === null || (typeof password === 'string' && PASSWORD_PATTERN.test(password))) return null;
  return invalid('password must be a scrypt hash the member made, or null');
}

/** `/`, or `/a/b` without empty, `.` or `..` segments and no trailing slash. */
function isCanonicalPath(path: string): boolean {
  if (path === ROOT) return true;
  if (!path.startsWith('/') || path.endsWith('/') || path.length > 4096) return false;
  return path
    .slice(1)
    .split('/')
    .every((s) => s.length > 0 && s !== '.' && s !== '..');
}
