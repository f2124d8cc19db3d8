/**
 * The client's auth handshake, on a fake clock against scripted fake members that keep an
 * identity per socket: `authenticate` goes first on every new socket and nothing else goes out
 * before its answer; a request refused UNAUTHENTICATED (the identity lapsed) is sent once more
 * after authenticating again when the client holds a password; a wrong password fails the first
 * call with UNAUTHENTICATED and is not tried again by itself; the admin calls are unstamped
 * writes never re-sent once they may have been applied.
 */

import { describe, expect, it } from 'vitest';
import { WardenClient } from '../../client/client.js';
import type { AuthCredentials } from '../../client/auth.js';
import { WardenError } from '../../shared/errors.js';
import { drive, fakeCluster, FakeClock, FakeMember, okBehaviour, type FakeSocket, type Frame } from './fakes.js';

const unauthenticated = (message: string): Frame => ({ ok: false, error: { code: 'UNAUTHENTICATED', message, outcome: 'final' } });

/**
 * A member with auth on and one user (alice): an identity per socket, refused past `lapse()`;
 * `log` is every frame it answered, with the socket it came on; `answers` replaces the answer to
 * a type (for `authenticate`, the check itself; for others, after the identity check).
 */
class AuthMember {
  password = 'secret';
  readonly log: { readonly socket: FakeSocket; readonly frame: Frame }[] = [];
  readonly member: FakeMember;
  readonly answers = new Map<string, (frame: Frame) => Frame | null>();
  private readonly identities = new WeakSet<FakeSocket>();
  private readonly ok = okBehaviour();
  private tokens = 0;

  constructor(url: string) {
    this.member = new FakeMember(url, (frame, member) => {
      const socket = member.socket!;
      this.log.push({ socket, frame });
      const type = frame['type'] as string;
      const answer = this.answers.get(type);
      if (type === 'authenticate') {
        if (answer !== undefined) return answer(frame);
        const valid = frame['user'] === 'alice' ? frame['password'] === this.password : frame['token'] === 'tok-1';
        if (!valid) return unauthenticated('wrong user or password');
        this.identities.add(socket);
        return { ok: true, enabled: true, user: 'alice', token: `tok-${++this.tokens}`, ttlMs: 300_000 };
      }
      if (!this.identities.has(socket)) return unauthenticated('the token expired: authenticate again');
      return answer !== undefined ? answer(frame) : this.ok(frame, member);
    });
  }

  /** The socket speaks as alice (its authentication answered by hand). */
  admit(socket: FakeSocket): void {
    this.identities.add(socket);
  }

  /** Every socket's identity lapses (the token TTL passed). */
  lapse(): void {
    for (const socket of this.member.sockets) this.identities.delete(socket);
  }

  types(from = 0): string[] {
    return this.log.slice(from).map((e) => e.frame['type'] as string);
  }
}

function setup(count = 1, auth: AuthCredentials = { user: 'alice', password: 'secret' }, options: { timeoutMs?: number } = {}) {
  const clock = new FakeClock();
  const members = Array.from({ length: count }, (_, i) => new AuthMember(`ws://m${i + 1}`));
  const client = new WardenClient({ endpoints: members.map((m) => m.member.url), clock, random: () => 0, attemptTimeoutMs: 1_000, timeoutMs: options.timeoutMs ?? 10_000, auth }, fakeCluster(members.map((m) => m.member)));
  return { clock, members, client };
}

describe('the auth handshake', () => {
  it('sends authenticate first on every new socket, and nothing else before its answer', async () => {
    const { clock, members, client } = setup(2);
    const [m1, m2] = [members[0]!, members[1]!];
    m1.answers.set('authenticate', () => null); // answered by hand below
    const read = client.get('/a');
    const write = client.put('/b', 'x');
    await clock.advance(1);
    expect(m1.types()).toEqual(['authenticate']);
    expect(m1.log[0]!.frame).toMatchObject({ user: 'alice', password: 'secret' });
    await clock.advance(300); // waiting, under the attempt deadline: still nothing else sent
    expect(m1.types()).toEqual(['authenticate']);
    m1.admit(m1.log[0]!.socket);
    m1.log[0]!.socket.deliver({ ok: true, enabled: true, user: 'alice', token: 'tok-1', ttlMs: 300_000, id: m1.log[0]!.frame['id'] });
    await drive(clock, Promise.all([read, write]));
    expect(m1.types()[0]).toBe('authenticate');
    expect(m1.types().sort()).toEqual(['authenticate', 'get', 'put', 'register']);
    expect(client.auth.token).toBe('tok-1');
    // The member is lost: the next socket (m2) authenticates before the read goes out on it.
    m1.member.down = true;
    m1.member.kill();
    await drive(clock, client.get('/c'));
    expect(m2.types()[0]).toBe('authenticate');
    expect(m2.types()).toContain('get');
    for (const m of members) {
      const sockets = new Set(m.log.map((e) => e.socket));
      for (const socket of sockets) expect(m.log.find((e) => e.socket === socket)!.frame['type']).toBe('authenticate');
    }
  });

  it('keeps the token it was answered, and connects with a token alone', async () => {
    const { clock, members, client } = setup(1, { token: 'tok-1' });
    await drive(clock, client.get('/a'));
    expect(members[0]!.log[0]!.frame).toEqual({ type: 'authenticate', token: 'tok-1', id: expect.any(Number) as number });
    expect(client.auth.user).toBe('alice');
    expect(client.auth.token).toBe('tok-1');
  });

  it('goes on as usual when the members have auth off', async () => {
    const { clock, members, client } = setup();
    const ok = okBehaviour();
    members[0]!.member.behaviour = (frame, member) => (frame['type'] === 'authenticate' ? { ok: true, enabled: false, user: null, token: null } : ok(frame, member));
    const node = await drive(clock, client.get('/a'));
    expect(node?.path).toBe('/a');
    expect(members[0]!.member.received.map((f) => f['type'])).toEqual(['authenticate', 'get']);
  });

  it('retries a request refused UNAUTHENTICATED once, after authenticating again on the same socket, when it holds a password', async () => {
    const { clock, members, client } = setup();
    const m = members[0]!;
    await drive(clock, client.put('/warm', 'x'));
    const sockets = m.member.sockets.length;
    // A write: refused, authenticated again, sent again with the same stamp.
    let from = m.log.length;
    m.lapse();
    expect((await drive(clock, client.put('/a', 'x'))).path).toBe('/a');
    expect(m.types(from)).toEqual(['put', 'authenticate', 'put']);
    const [first, again] = m.log.slice(from).filter((e) => e.frame['type'] === 'put').map((e) => e.frame['client'] as Record<string, number>);
    expect(again!['seq']).toBe(first!['seq']);
    // Reads refused together: one authentication for all of them, then each sent once more.
    from = m.log.length;
    m.lapse();
    const nodes = await drive(clock, Promise.all([client.get('/a'), client.get('/b'), client.get('/c')]));
    expect(nodes.map((n) => n?.path)).toEqual(['/a', '/b', '/c']);
    expect(m.types(from)).toEqual(['get', 'get', 'get', 'authenticate', 'get', 'get', 'get']);
    expect(m.member.sockets.length).toBe(sockets); // all on the same socket
  });

  it('retries only once: a second UNAUTHENTICATED is the answer', async () => {
    const { clock, members, client } = setup();
    const m = members[0]!;
    await drive(clock, client.get('/warm'));
    m.member.behaviour = (frame) => (frame['type'] === 'authenticate' ? { ok: true, enabled: true, user: 'alice', token: 'tok-2', ttlMs: 300_000 } : unauthenticated('the user alice was deleted: authenticate again'));
    const from = m.member.received.length;
    const error = await drive(clock, client.get('/a').catch((e: unknown) => e));
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('UNAUTHENTICATED');
    expect(m.member.received.slice(from).map((f) => f['type'])).toEqual(['get', 'authenticate', 'get']);
  });

  it('does not authenticate again with a token alone: the refusal is the answer', async () => {
    const { clock, members, client } = setup(1, { token: 'tok-1' });
    const m = members[0]!;
    await drive(clock, client.get('/warm'));
    m.lapse();
    const from = m.log.length;
    const error = await drive(clock, client.get('/a').catch((e: unknown) => e));
    expect((error as WardenError).code).toBe('UNAUTHENTICATED');
    expect(m.types(from)).toEqual(['get']);
  });

  it('fails the first call UNAUTHENTICATED on a wrong password, and tries nothing by itself after', async () => {
    const { clock, members, client } = setup(2, { user: 'alice', password: 'wrong' });
    const [read, write] = await drive(clock, Promise.all([client.get('/a').catch((e: unknown) => e), client.put('/b', 'x').catch((e: unknown) => e)]));
    for (const error of [read, write]) {
      expect(error).toBeInstanceOf(WardenError);
      expect((error as WardenError).code).toBe('UNAUTHENTICATED');
      expect((error as WardenError).message).toMatch(/wrong user or password/);
      expect((error as WardenError).message).not.toMatch(/wrong"|secret/);
    }
    const sent = (): string[] => members.flatMap((m) => m.types());
    expect(sent()).toEqual(['authenticate']);
    await clock.advance(60_000);
    expect(sent()).toEqual(['authenticate']);
    // A later call tries once more (the password may have been set meanwhile), and fails once.
    const again = await drive(clock, client.get('/c').catch((e: unknown) => e));
    expect((again as WardenError).code).toBe('UNAUTHENTICATED');
    expect(sent()).toEqual(['authenticate', 'get', 'authenticate']);
    await clock.advance(60_000);
    expect(sent()).toHaveLength(3);
  });

  it('fails a watch on a wrong password instead of waiting for ever', async () => {
    const { clock, members, client } = setup(1, { user: 'alice', password: 'wrong' });
    const watch = client.watch('/a');
    const error = await drive(clock, watch.started.catch((e: unknown) => e));
    expect((error as WardenError).code).toBe('UNAUTHENTICATED');
    // Its cancel (one more frame, refused too) may try once more; then nothing.
    await clock.advance(1_000);
    const attempts = members[0]!.types().filter((t) => t === 'authenticate').length;
    expect(attempts).toBeLessThanOrEqual(2);
    await clock.advance(60_000);
    expect(members[0]!.types().filter((t) => t === 'authenticate')).toHaveLength(attempts);
  });

  it('leaves a member that throttles its authentication, and authenticates on another', async () => {
    const { clock, members, client } = setup(2);
    members[0]!.answers.set('authenticate', () => ({ ok: false, error: { code: 'RESOURCE_EXHAUSTED', message: 'too many failed attempts from this address: try again in 800 ms', outcome: 'retry' } }));
    const node = await drive(clock, client.get('/a'));
    expect(node?.path).toBe('/a');
    expect(members[0]!.types()).toEqual(['authenticate']);
    expect(members[1]!.types()).toEqual(['authenticate', 'get']);
  });
});

describe('the admin calls', () => {
  it('send their frames unstamped, and follow the client\'s own password change', async () => {
    const { clock, members, client } = setup();
    const m = members[0]!;
    for (const type of ['userAdd', 'userPasswd', 'userGrantRole', 'roleGrant', 'roleRevoke', 'authEnable']) m.answers.set(type, () => ({ ok: true, revision: 7, op: type, authRevision: 5 }));
    m.answers.set('userList', () => ({ ok: true, authRevision: 4, users: [{ name: 'alice', roles: ['root'], password: true }] }));
    m.answers.set('roleList', () => ({ ok: true, authRevision: 4, roles: [{ name: 'root', permissions: [{ path: '/', access: 'admin' }] }] }));
    m.answers.set('authStatus', () => ({ ok: true, enabled: true, authRevision: 4, user: 'alice' }));
    expect(await drive(clock, client.users.add('bob', 'pw'))).toEqual({ revision: 7, authRevision: 5 });
    await drive(clock, client.users.add('carol'));
    await drive(clock, client.users.grantRole('bob', 'reader'));
    await drive(clock, client.roles.grant('reader', '/app', 'read'));
    await drive(clock, client.roles.revoke('reader', '/app'));
    await drive(clock, client.auth.enable());
    expect(await drive(clock, client.users.list())).toEqual([{ name: 'alice', roles: ['root'], password: true }]);
    expect(await drive(clock, client.roles.list())).toEqual([{ name: 'root', permissions: [{ path: '/', access: 'admin' }] }]);
    expect(await drive(clock, client.auth.status())).toEqual({ enabled: true, authRevision: 4, user: 'alice' });
    const frames = m.log.map((e) => e.frame);
    expect(frames.find((f) => f['type'] === 'userAdd' && f['name'] === 'carol')).not.toHaveProperty('password');
    expect(frames.find((f) => f['type'] === 'roleGrant')).toMatchObject({ name: 'reader', path: '/app', access: 'read' });
    for (const f of frames) expect(f).not.toHaveProperty('client');
    expect(frames.filter((f) => f['type'] === 'register')).toHaveLength(0);
    // Its own password changed — proving the old one it holds — and the next socket authenticates with the new one.
    await drive(clock, client.users.passwd('alice', 'new-secret'));
    expect(m.log.map((e) => e.frame).find((f) => f['type'] === 'userPasswd')).toMatchObject({ name: 'alice', password: 'new-secret', oldPassword: m.password });
    m.password = 'new-secret';
    m.member.kill();
    await drive(clock, client.auth.status());
    expect(m.log.map((e) => e.frame).filter((f) => f['type'] === 'authenticate').at(-1)).toMatchObject({ user: 'alice', password: 'new-secret' });
  });

  it('say OUTCOME_UNKNOWN and are not sent again when their member is lost after they went out', async () => {
    const { clock, members, client } = setup(2);
    await drive(clock, client.get('/warm'));
    const m1 = members[0]!;
    m1.answers.set('roleAdd', () => null);
    const added = client.roles.add('ops').catch((e: unknown) => e);
    await clock.advance(1);
    m1.member.kill();
    const error = await drive(clock, added);
    expect((error as WardenError).code).toBe('OUTCOME_UNKNOWN');
    expect([...m1.types(), ...members[1]!.types()].filter((t) => t === 'roleAdd')).toHaveLength(1);
  });

  it('are retried when refused with a "retry" code (certainly not applied)', async () => {
    const { clock, members, client } = setup(2);
    const [m1, m2] = [members[0]!, members[1]!];
    m1.answers.set('authEnable', () => ({ ok: false, error: { code: 'NOT_LEADER', message: 'no', outcome: 'retry', leader: { name: 'n2', url: 'ws://m2' } } }));
    m2.answers.set('authEnable', () => ({ ok: true, revision: 3, op: 'authEnable', authRevision: 2 }));
    await drive(clock, client.get('/warm'));
    expect(await drive(clock, client.auth.enable())).toEqual({ revision: 3, authRevision: 2 });
    expect(m1.types().filter((t) => t === 'authEnable')).toHaveLength(1);
    expect(m2.types()).toEqual(['authenticate', 'authEnable']);
  });
});
