/**
 * The auth table's record in the state store (key 0x03, store-format.ts): one MessagePack array
 * holding whether auth is on, the token key, the auth revision, the users and the roles. Written
 * whole on any change (auth changes are rare, and only an admin makes them); read back strictly.
 *
 * Must never: load a record it cannot read (it throws, naming what is wrong); change the meaning
 * of a field without a new store format.
 */

import { ACCESS_LEVELS, type Access, type AuthImage } from './auth.js';

/** [enabled, tokenKey, revision, [[name, password, roles, revision]…], [[name, [[path, access]…]]…]] */
export function authFields(auth: AuthImage): unknown {
  return ([auth.enabled, auth.tokenKey, auth.revision, auth.users.map((u) => [u.name, u.password, u.roles, u.revision]), auth.roles.map((r) => [r.name, r.permissions.map((p) => [p.path, p.access])])]);
}

export function decodeAuth(fields: unknown, where: () => string): AuthImage {
  const fail = (what: string): never => {
    throw new Error(`${where()}: ${what}`);
  };
  if (!Array.isArray(fields) || fields.length !== 5) return fail('not an auth table');
  const [enabled, tokenKey, revision, users, roles] = fields as unknown[];
  if (typeof enabled !== 'boolean' || (tokenKey !== null && typeof tokenKey !== 'string') || !Number.isSafeInteger(revision) || !Array.isArray(users) || !Array.isArray(roles)) return fail('not an auth table');
  return {
    enabled,
    tokenKey: tokenKey as string | null,
    revision: revision as number,
    users: users.map((u: unknown) => {
      if (!Array.isArray(u) || u.length !== 4 || typeof u[0] !== 'string' || (u[1] !== null && typeof u[1] !== 'string') || !Array.isArray(u[2]) || !u[2].every((r) => typeof r === 'string') || !Number.isSafeInteger(u[3])) return fail('not a user');
      return { name: u[0] as string, password: u[1] as string | null, roles: u[2] as string[], revision: u[3] as number };
    }),
    roles: roles.map((r: unknown) => {
      if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string' || !Array.isArray(r[1])) return fail('not a role');
      const permissions = (r[1] as unknown[]).map((p) => {
        if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || !ACCESS_LEVELS.includes(p[1] as Access)) return fail('not a permission');
        return { path: p[0] as string, access: p[1] as Access };
      });
      return { name: r[0] as string, permissions };
    }),
  };
}

