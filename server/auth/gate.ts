/**
 * Who a client connection speaks as, once auth is enabled: the user it authenticated as on this
 * connection (a password, or a token from an earlier one), else the name (CN) in the client
 * certificate it presented, if such a user exists. An identity from a password or a token holds
 * until the token's expiry and only while the user's revision is the one it was issued at;
 * after that every request is refused UNAUTHENTICATED, with the reason, until it authenticates
 * again (the client library does so by itself when it holds the password).
 *
 * Logins go through here: a password is checked against the replicated hash, after the failure
 * throttle (server/auth/throttle.ts) and inside the hasher's bounded queue.
 *
 * Must never: answer a request for a connection whose identity expired or was revoked; tell a
 * wrong password apart from an unknown user in its answer; hash a password for an attempt the
 * throttle holds back.
 */

import type { ErrorCode } from '../../shared/errors.js';
import type { StateMachine } from '../state/state-machine.js';
import type { AuditLog } from './audit.js';
import { QueueFull, type PasswordHasher } from './passwords.js';
import type { FailureThrottle } from './throttle.js';
import { issueToken, readToken } from './tokens.js';

export interface Identity {
  readonly user: string;
  readonly via: 'password' | 'token' | 'certificate';
  /** The user's revision it was established at (null: a certificate, which the CA vouches for). */
  readonly revision: number | null;
  readonly expiresAtMs: number | null;
  /** The token key when it was established: auth enabled anew (a new key) voids it. */
  readonly key: string | null;
}

/** A connection's side of auth: where it comes from, its certificate's name, and who it authenticated as. */
export interface AuthConnection {
  /** host:port, for the audit log. */
  readonly source: string;
  /** The client's address alone, for the per-source throttle (a new connection is no new source). */
  readonly address: string;
  /** The CN of a client certificate the trusted CA signed, else null. */
  readonly certName: string | null;
  identity: Identity | null;
}

export type WhoIs = { readonly ok: true; readonly user: string | undefined } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export type Login = { readonly ok: true; readonly user: string; readonly token: string; readonly ttlMs: number } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export interface GateDeps {
  readonly machine: () => StateMachine;
  readonly wallMs: () => number;
  readonly tokenTtlMs: number;
  readonly hasher: PasswordHasher;
  readonly throttle: FailureThrottle;
  readonly audit: AuditLog;
}

export class AuthGate {
  constructor(private readonly deps: GateDeps) {}

  /** The user a request on `connection` runs as: undefined while auth is off; refused if it must authenticate first. */
  whoIs(connection: AuthConnection): WhoIs {
    const auth = this.deps.machine().auth;
    if (!auth.enabled) return { ok: true, user: undefined };
    const identity = connection.identity;
    if (identity !== null) {
      const record = auth.user(identity.user);
      const why =
        record === undefined ? `the user ${identity.user} was deleted`
        : identity.revision !== null && record.revision !== identity.revision ? `the password of ${identity.user} changed`
        : identity.via !== 'certificate' && identity.key !== auth.tokenKey ? 'auth was enabled anew'
        : identity.expiresAtMs !== null && this.deps.wallMs() >= identity.expiresAtMs ? 'the token expired'
        : null;
      if (why === null) return { ok: true, user: identity.user };
      connection.identity = null;
      return { ok: false, code: 'UNAUTHENTICATED', message: `${why}: authenticate again` };
    }
    if (connection.certName !== null && auth.user(connection.certName) !== undefined) return { ok: true, user: connection.certName };
    return { ok: false, code: 'UNAUTHENTICATED', message: 'auth is enabled: authenticate first (a user and password, a token, or a client certificate naming a user)' };
  }

  /** A login with a password: on success the connection speaks as `user`, and a token for the next is answered. */
  async password(connection: AuthConnection, user: string, password: string): Promise<Login> {
    const checked = await this.check(connection, user, password, 'authenticate', 'UNAUTHENTICATED', 'wrong user or password');
    if (!checked.ok) return checked;
    const login = this.establish(connection, user, checked.revision, 'password');
    this.deps.audit.record({ action: 'authenticate', user, source: connection.source, outcome: 'ok', target: { via: 'password' } });
    return login;
  }

  /**
   * Whether `password` is `user`'s now, checked as a login is (throttled, in the hasher's
   * queue) but changing nothing about the connection: a user changing its own password proves
   * it knows the old one, so a stolen token cannot take the account over.
   */
  async proves(connection: AuthConnection, user: string, password: string): Promise<{ readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly message: string }> {
    const checked = await this.check(connection, user, password, 'userPasswd', 'PERMISSION_DENIED', 'the old password is wrong');
    return checked.ok ? { ok: true } : checked;
  }

  /**
   * One password check, as every one goes: held back inside its delay or while another for the
   * user runs, hashed in the bounded queue, its failure counted and audited as `action`.
   */
  private async check(connection: AuthConnection, user: string, password: string, action: string, wrongCode: ErrorCode, wrong: string): Promise<{ readonly ok: true; readonly revision: number } | { readonly ok: false; readonly code: ErrorCode; readonly message: string }> {
    const { throttle, audit } = this.deps;
    const held = throttle.wait(user, connection.address);
    if (held.ms > 0) return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `too many failed attempts ${held.who === 'user' ? `for the user ${user}` : 'from this address'}: try again in ${held.ms} ms` };
    if (!throttle.begin(user, connection.address)) return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `a password of ${user}, or several from this address, are being checked: try again when they are answered` };
    let matches: boolean;
    try {
      matches = await this.deps.hasher.verify(password, this.deps.machine().auth.user(user)?.password ?? null);
    } catch (error) {
      if (error instanceof QueueFull) return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `${error.message} on this member (--max-auth-queue): try again shortly` };
      throw error;
    } finally {
      throttle.end(user, connection.address);
    }
    // Read again after the wait: the user may have changed while its hash was computed.
    const record = this.deps.machine().auth.user(user);
    if (!matches || record === undefined) {
      throttle.failed(user, connection.address);
      audit.record({ action, user, source: connection.source, outcome: 'refused', code: wrongCode, reason: wrong });
      return { ok: false, code: wrongCode, message: wrong };
    }
    throttle.succeeded(user, connection.address);
    return { ok: true, revision: record.revision };
  }

  /** A login with a token an earlier login answered. */
  token(connection: AuthConnection, token: string): Login {
    const auth = this.deps.machine().auth;
    const refuse = (reason: string): Login => {
      this.deps.throttle.sourceFailed(connection.address);
      this.deps.audit.record({ action: 'authenticate', user: null, source: connection.source, outcome: 'refused', code: 'UNAUTHENTICATED', reason });
      return { ok: false, code: 'UNAUTHENTICATED', message: `${reason}: authenticate with a password again` };
    };
    // A guesser of tokens is slowed per address, as one of passwords is (and not audited while held back).
    const held = this.deps.throttle.sourceWait(connection.address);
    if (held > 0) return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `too many failed attempts from this address: try again in ${held} ms` };
    if (auth.tokenKey === null) return refuse('this cluster has issued no tokens');
    const read = readToken(token, auth.tokenKey);
    if (!read.ok) return refuse(read.reason);
    const { claims } = read;
    const record = auth.user(claims.user);
    if (record === undefined) return refuse(`the user ${claims.user} was deleted`);
    if (record.revision !== claims.revision) return refuse(`the password of ${claims.user} changed since the token was issued`);
    if (this.deps.wallMs() >= claims.expiresAtMs) return refuse('the token expired');
    this.deps.throttle.sourceSucceeded(connection.address);
    connection.identity = { user: claims.user, via: 'token', revision: claims.revision, expiresAtMs: claims.expiresAtMs, key: auth.tokenKey };
    return { ok: true, user: claims.user, token, ttlMs: Math.max(0, claims.expiresAtMs - this.deps.wallMs()) };
  }

  private establish(connection: AuthConnection, user: string, revision: number, via: Identity['via']): Login {
    const key = this.deps.machine().auth.tokenKey;
    const expiresAtMs = this.deps.wallMs() + this.deps.tokenTtlMs;
    connection.identity = { user, via, revision, expiresAtMs, key };
    // Auth never enabled has no key yet; the login still holds on this connection.
    const token = key === null ? '' : issueToken({ user, revision, expiresAtMs }, key);
    return { ok: true, user, token, ttlMs: this.deps.tokenTtlMs };
  }
}
