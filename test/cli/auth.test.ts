/**
 * How `warden` reads who it speaks as and new passwords (client/cli/credentials.ts), in process
 * with a scripted terminal; and the auth commands' bad usage (exit 2, before any connection) as
 * real processes, with no cluster behind them. The real-process tests against a cluster with
 * auth on live with the lead's integration tests.
 */

import { describe, expect, it } from 'vitest';
import { credentialsOf, newPasswordOf, passwordFlag, type Asker } from '../../client/cli/credentials.js';
import { UsageError } from '../../client/cli/output.js';
import { runCli } from './run.js';

/** A terminal that answers `typed` in turn (and records the questions), or none. */
function terminal(...typed: string[]): Asker & { readonly asked: string[] } {
  const asked: string[] = [];
  return {
    interactive: true,
    asked,
    ask: (question) => {
      asked.push(question);
      return Promise.resolve(typed.shift() ?? '');
    },
  };
}
const NONE: Asker = { interactive: false, ask: () => Promise.reject(new Error('asked without a terminal')) };

describe('--user and --password', () => {
  it('read NAME:PASSWORD, or NAME with --password, WARDEN_PASSWORD or the terminal, in that order', async () => {
    expect(await credentialsOf('alice:s3:cret', undefined, 'env', NONE)).toEqual({ user: 'alice', password: 's3:cret' });
    expect(await credentialsOf('alice', 'flag', 'env', NONE)).toEqual({ user: 'alice', password: 'flag' });
    expect(await credentialsOf('alice', undefined, 'env', NONE)).toEqual({ user: 'alice', password: 'env' });
    const tty = terminal('typed');
    expect(await credentialsOf('alice', undefined, undefined, tty)).toEqual({ user: 'alice', password: 'typed' });
    expect(tty.asked).toEqual(['Password for alice: ']);
    // `--user alice:` is a name with the password still to come.
    expect(await credentialsOf('alice:', undefined, undefined, terminal('t'))).toEqual({ user: 'alice', password: 't' });
  });

  it('connect without credentials when no --user is given, whatever WARDEN_PASSWORD holds', async () => {
    expect(await credentialsOf(undefined, undefined, 'env', NONE)).toBeUndefined();
    expect(await credentialsOf('', undefined, undefined, NONE)).toBeUndefined();
  });

  it('are bad usage when incomplete or contradictory, and never ask without a terminal', async () => {
    const bad = async (user: unknown, password: unknown, env?: string, asker: Asker = NONE): Promise<string> => {
      const error = await credentialsOf(user, password, env, asker).then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      return (error as UsageError).message;
    };
    expect(await bad('alice', undefined)).toMatch(/stdin is not a terminal/);
    expect(await bad(undefined, 'secret')).toMatch(/--password needs --user/);
    expect(await bad('alice:one', 'two')).toMatch(/given twice/);
    expect(await bad(':secret', undefined)).toMatch(/empty name/);
    expect(await bad('alice', ['one', 'two'])).toMatch(/more than once/);
    expect(await bad('alice', '')).toMatch(/empty/);
    expect(await bad('alice', undefined, undefined, terminal(''))).toMatch(/no password typed/);
  });

  it('tell `user add --no-password` (yargs\' negation of --password) from the login password', () => {
    expect(passwordFlag(undefined)).toEqual({ password: undefined, none: false });
    expect(passwordFlag('s')).toEqual({ password: 's', none: false });
    expect(passwordFlag(false)).toEqual({ password: undefined, none: true });
    expect(passwordFlag(['s', false])).toEqual({ password: 's', none: true });
  });
});

describe('a new password', () => {
  it('comes from --new-password, or is typed twice on the terminal, or is left out with --no-password on user add', async () => {
    expect(await newPasswordOf('bob', 'pw', false, true, NONE)).toBe('pw');
    expect(await newPasswordOf('bob', undefined, true, true, NONE)).toBeUndefined();
    const tty = terminal('pw', 'pw');
    expect(await newPasswordOf('bob', undefined, false, false, tty)).toBe('pw');
    expect(tty.asked).toEqual(['New password for bob: ', 'Type it again: ']);
  });

  it('is bad usage when the two typed differ, both flags are given, or there is no terminal to type it on', async () => {
    const bad = (...args: Parameters<typeof newPasswordOf>): Promise<unknown> => newPasswordOf(...args).then(() => null, (e: unknown) => e);
    expect(((await bad('bob', undefined, false, true, terminal('a', 'b'))) as Error).message).toMatch(/differ/);
    expect(((await bad('bob', 'pw', true, true, NONE)) as Error).message).toMatch(/give one/);
    expect(((await bad('bob', undefined, true, false, NONE)) as Error).message).toMatch(/only `user add`/);
    expect(((await bad('bob', undefined, false, true, NONE)) as Error).message).toMatch(/--no-password: a user that authenticates by client certificate only/);
    for (const error of await Promise.all([bad('bob', undefined, false, true, terminal('a', 'b')), bad('bob', '', false, true, NONE)])) expect(error).toBeInstanceOf(UsageError);
  });
});

describe('warden auth, user and role: bad usage exits 2 before connecting', () => {
  // Nothing listens here: a command that got past its usage checks would fail to connect (exit 1).
  const nowhere = { endpoints: 'ws://127.0.0.1:9', env: { WARDEN_USER: '', WARDEN_PASSWORD: '', WARDEN_TIMEOUT: '2000' } };

  it('refuses incomplete logins, bad access levels, relative paths and contradictory password flags', async () => {
    const [noPassword, passwordAlone, access, relative, both, passwdNone, missing] = await Promise.all([
      runCli(['--user', 'alice', 'auth', 'status'], nowhere),
      runCli(['--password', 'x', 'user', 'list'], nowhere),
      runCli(['--user', 'root:pw', 'role', 'grant', 'readers', '/config', 'everything'], nowhere),
      runCli(['--user', 'root:pw', 'role', 'grant', 'readers', 'config', 'read'], nowhere),
      runCli(['--user', 'root:pw', 'user', 'add', 'bob', '--new-password', 'pw', '--no-password'], nowhere),
      runCli(['--user', 'root:pw', 'user', 'passwd', 'bob', '--no-password'], nowhere),
      runCli(['user', 'grant-role', 'bob'], nowhere),
    ]);
    for (const r of [noPassword, passwordAlone, access, relative, both, passwdNone, missing]) expect(r.code, r.stderr).toBe(2);
    expect(noPassword.stderr).toMatch(/--user alice: give its password/);
    expect(passwordAlone.stderr).toMatch(/--password needs --user/);
    expect(access.stderr).toMatch(/Invalid values/);
    expect(relative.stderr).toMatch(/a path starts with "\/"/);
    expect(both.stderr).toMatch(/give one/);
    expect(passwdNone.stderr).toMatch(/only `user add`/);
    expect(missing.stderr).toMatch(/Not enough non-option arguments/);
    for (const r of [access, relative, both]) expect(r.stderr).not.toMatch(/pw/);
  });

  it('parses a well-formed command through to the connection (exit 1, nothing to reach), the password never printed', async () => {
    const [add, list] = await Promise.all([
      runCli(['--user', 'root', '--password', 'hunter2', 'user', 'add', 'web-1', '--no-password'], nowhere),
      runCli(['--user', 'root:hunter2', 'role', 'list', '-o', 'json'], nowhere),
    ]);
    for (const r of [add, list]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/UNAVAILABLE/);
      expect(r.stdout + r.stderr).not.toMatch(/hunter2/);
    }
  });

  it('lists the new commands in --help', async () => {
    const [help, user] = await Promise.all([runCli(['--help']), runCli(['user', '--help'])]);
    expect(help.stdout).toMatch(/warden auth/);
    expect(help.stdout).toMatch(/warden role/);
    expect(help.stdout).toMatch(/--user/);
    expect(user.stdout).toMatch(/grant-role/);
  });
});
