/**
 * The member's side of logins, with an injected clock: the failure throttle (a delay that doubles
 * per failure, per user and per address; others never wait; bounded), tokens (signed, refused when
 * altered, expired, or issued before a password change), the gate (a connection's identity holds
 * until its token's expiry, or until its user changes; a certificate's CN names a user), and the
 * password hasher (one scrypt at a time, a bounded queue).
 *
 * Must never: sleep; the clock here is a number the test moves.
 */

import { describe, expect, it } from 'vitest';
import { memoryAuditLog } from '../../../server/auth/audit.js';
import { AuthGate, type AuthConnection } from '../../../server/auth/gate.js';
import { PasswordHasher, QueueFull } from '../../../server/auth/passwords.js';
import { FailureThrottle } from '../../../server/auth/throttle.js';
import { issueToken, readToken } from '../../../server/auth/tokens.js';
import { StateMachine } from '../../../server/state/state-machine.js';

const KEY = 'cd'.repeat(32);

describe('the failure throttle', () => {
  it('delays the next try of a failing user and address, doubling, and no one else', () => {
    let now = 0;
    const throttle = new FailureThrottle(100, () => now);
    throttle.failed('alice', '10.0.0.9');
    expect(throttle.wait('alice', '10.0.0.1')).toEqual({ ms: 100, who: 'user' });
    expect(throttle.wait('bob', '10.0.0.9')).toEqual({ ms: 100, who: 'source' });
    expect(throttle.wait('bob', '10.0.0.1')).toEqual({ ms: 0, who: null });
    now = 100;
    throttle.failed('alice', '10.0.0.9');
    expect(throttle.wait('alice', '10.0.0.1').ms).toBe(200);
    for (let i = 0; i < 30; i++) throttle.failed('alice', '10.0.0.9');
    expect(throttle.wait('alice', '10.0.0.1').ms).toBe(10_000);
    throttle.succeeded('alice', '10.0.0.9');
    expect(throttle.wait('alice', '10.0.0.9').ms).toBe(0);
  });

  it('lets one check run per user, and a few per address, at once', () => {
    const throttle = new FailureThrottle(100, () => 0);
    expect(throttle.begin('alice', '10.0.0.9')).toBe(true);
    expect(throttle.begin('alice', '10.0.0.1')).toBe(false);
    for (let i = 0; i < 3; i++) expect(throttle.begin(`u${i}`, '10.0.0.9')).toBe(true);
    expect(throttle.begin('bob', '10.0.0.9')).toBe(false);
    expect(throttle.begin('bob', '10.0.0.2')).toBe(true);
    throttle.end('alice', '10.0.0.9');
    expect(throttle.begin('alice', '10.0.0.9')).toBe(true);
  });

  it('forgets the least recently failing past its bound', () => {
    const throttle = new FailureThrottle(4, () => 0);
    for (let i = 0; i < 10; i++) throttle.failed(`u${i}`, `a${i}`);
    expect(throttle.size).toBe(4);
    expect(throttle.wait('u0', 'x').ms).toBe(0);
    expect(throttle.wait('u9', 'x').ms).toBe(100);
  });
});

describe('tokens', () => {
  it('read back what was signed, and refuse an altered token or another key', () => {
    const token = issueToken({ user: 'alice', revision: 3, expiresAtMs: 5_000 }, KEY);
    expect(readToken(token, KEY)).toEqual({ ok: true, claims: { user: 'alice', revision: 3, expiresAtMs: 5_000 } });
    const [prefix, payload, signature] = token.split('.') as [string, string, string];
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ u: 'root', r: 3, x: 5_000 })).toString('base64url')}.${signature}`;
    expect(readToken(forged, KEY)).toMatchObject({ ok: false });
    expect(readToken(`${prefix}.${payload}.${signature}`, 'ef'.repeat(32))).toMatchObject({ ok: false });
    expect(readToken('not a token', KEY)).toMatchObject({ ok: false, reason: 'not a Warden token' });
  });
});

describe('the gate', () => {
  const HASH = 'scrypt$16384$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA==';
  function setup() {
    let now = 1_000;
    const machine = new StateMachine();
    let index = 0;
    const apply = (command: Record<string, unknown>, user?: string) => machine.apply({ index: ++index, timeMs: 0, command, ...(user === undefined ? {} : { user }) }).result;
    apply({ op: 'userAdd', name: 'root', password: HASH });
    apply({ op: 'userAdd', name: 'carol', password: null });
    apply({ op: 'authEnable', tokenKey: KEY });
    const audit = memoryAuditLog();
    const gate = new AuthGate({ machine: () => machine, wallMs: () => now, tokenTtlMs: 10_000, hasher: new PasswordHasher(4), throttle: new FailureThrottle(100, () => now), audit });
    let port = 0;
    // Each connection from its own address, unless told: the per-address throttle stays out of the way.
    const connection = (certName: string | null = null, address = `10.0.0.${++port}`): AuthConnection => ({ source: `${address}:5`, address, certName, identity: null });
    return { gate, apply, audit, connection, advance: (ms: number) => (now += ms), machine };
  }

  it('holds an identity from a token until it expires, or until its user changes', () => {
    const { gate, apply, connection, advance } = setup();
    const token = issueToken({ user: 'root', revision: 1, expiresAtMs: 5_000 }, KEY);
    const c = connection();
    expect(gate.whoIs(c)).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
    expect(gate.token(c, token)).toMatchObject({ ok: true, user: 'root' });
    expect(gate.whoIs(c)).toEqual({ ok: true, user: 'root' });
    advance(4_000);
    expect(gate.whoIs(c)).toMatchObject({ ok: false, message: expect.stringMatching(/token expired/) });
    expect(gate.token(connection(), token)).toMatchObject({ ok: false, message: expect.stringMatching(/expired/) });
    const fresh = issueToken({ user: 'root', revision: 1, expiresAtMs: 50_000 }, KEY);
    const d = connection();
    expect(gate.token(d, fresh)).toMatchObject({ ok: true });
    apply({ op: 'userPasswd', name: 'root', password: HASH }, 'root');
    expect(gate.whoIs(d)).toMatchObject({ ok: false, message: expect.stringMatching(/password of root changed/) });
    expect(gate.token(connection(), fresh)).toMatchObject({ ok: false });
  });

  it('voids an identity once auth is enabled anew (a new key), and slows a guesser of tokens per address', () => {
    const { gate, apply, connection } = setup();
    const c = connection();
    expect(gate.token(c, issueToken({ user: 'root', revision: 1, expiresAtMs: 50_000 }, KEY))).toMatchObject({ ok: true });
    apply({ op: 'authDisable' }, 'root');
    apply({ op: 'authEnable', tokenKey: 'ef'.repeat(32) }, 'root');
    expect(gate.whoIs(c)).toMatchObject({ ok: false, message: expect.stringMatching(/enabled anew/) });
    const guesser = connection(null, '192.0.2.7');
    expect(gate.token(guesser, 'wt1.x.y')).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
    expect(gate.token(guesser, 'wt1.x.z')).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED' });
  });

  it('names the user of a client certificate whose CN is a user, and no one else', () => {
    const { gate, connection } = setup();
    expect(gate.whoIs(connection('carol'))).toEqual({ ok: true, user: 'carol' });
    expect(gate.whoIs(connection('mallory'))).toMatchObject({ ok: false, code: 'UNAUTHENTICATED' });
  });

  it('refuses a wrong password the same way as an unknown user, audits it, and holds the next try back without hashing', async () => {
    const { gate, connection, audit } = setup();
    const c = connection(null, '127.0.0.1');
    expect(await gate.password(c, 'root', 'wrong')).toEqual({ ok: false, code: 'UNAUTHENTICATED', message: 'wrong user or password' });
    expect(await gate.password(connection(null, '127.0.0.1'), 'nobody', 'x')).toMatchObject({ ok: false, code: expect.stringMatching(/UNAUTHENTICATED|RESOURCE_EXHAUSTED/) });
    expect(await gate.password(c, 'root', 'wrong')).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED', message: expect.stringMatching(/too many failed attempts/) });
    expect(audit.events[0]).toMatchObject({ action: 'authenticate', user: 'root', source: '127.0.0.1:5', outcome: 'refused' });
  });
});

describe('the password hasher', () => {
  it('verifies what it hashed, salts every hash, and refuses past its queue', async () => {
    const hasher = new PasswordHasher(1);
    const [a, b] = await Promise.all([hasher.hash('secret'), hasher.hash('secret')]);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await hasher.verify('secret', a)).toBe(true);
    expect(await hasher.verify('Secret', a)).toBe(false);
    // A stored hash whose cost is past the bound (4 GiB of memory) is no match, and costs a decoy.
    expect(await hasher.verify('secret', 'scrypt$1048576$32$16$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA==')).toBe(false);
    const three = [hasher.hash('x'), hasher.hash('y'), hasher.hash('z')];
    const settled = await Promise.allSettled(three);
    expect(settled.filter((s) => s.status === 'rejected' && s.reason instanceof QueueFull)).toHaveLength(1);
  });
});
