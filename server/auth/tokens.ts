/**
 * Authentication tokens: what `authenticate` answers, so a client proves who it is on its next
 * connection (to any member) without sending its password again. A token names the user, the
 * user's revision when it was issued, and when it expires, signed with HMAC-SHA256 under the
 * cluster's token key (replicated: drawn when auth was enabled). It is void once it expires, once
 * the user's revision moves (a password change, the user deleted and made again), or once auth
 * is enabled anew (a new key) — revocation by a revision bump, with nothing to store per token.
 *
 * Must never: accept a token whose signature does not check (compared in constant time), that
 * has expired, or whose user's revision moved since it was issued.
 */

import { createHmac, timingSafeEqual } from 'node:crypto';

const PREFIX = 'wt1';
/** The longest token taken (a name of 128 characters fits with room to spare). */
export const TOKEN_CHARS_MAX = 1_024;

export interface TokenClaims {
  readonly user: string;
  /** The user's revision when issued. */
  readonly revision: number;
  /** Wall-clock ms after which it is refused. */
  readonly expiresAtMs: number;
}

export function issueToken(claims: TokenClaims, keyHex: string): string {
  const payload = Buffer.from(JSON.stringify({ u: claims.user, r: claims.revision, x: claims.expiresAtMs })).toString('base64url');
  return `${PREFIX}.${payload}.${sign(payload, keyHex)}`;
}

export type TokenCheck = { readonly ok: true; readonly claims: TokenClaims } | { readonly ok: false; readonly reason: string };

/** The claims of a token signed with `keyHex`; not checked against the user table or the clock (the caller does). */
export function readToken(token: string, keyHex: string): TokenCheck {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return { ok: false, reason: 'not a Warden token' };
  const [, payload, signature] = parts as [string, string, string];
  const expected = Buffer.from(sign(payload, keyHex));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'the token was not signed by this cluster (or auth was enabled again since)' };
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'the token is damaged' };
  }
  const { u, r, x } = (fields ?? {}) as Record<string, unknown>;
  if (typeof u !== 'string' || !Number.isSafeInteger(r) || !Number.isSafeInteger(x)) return { ok: false, reason: 'the token is damaged' };
  return { ok: true, claims: { user: u, revision: r as number, expiresAtMs: x as number } };
}

function sign(payload: string, keyHex: string): string {
  return createHmac('sha256', Buffer.from(keyHex, 'hex')).update(payload).digest('base64url');
}
