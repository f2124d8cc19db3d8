/**
 * Who `warden` speaks as: `--user NAME:PASSWORD`, or `--user NAME` with `--password` (env
 * WARDEN_USER, WARDEN_PASSWORD), else the password typed on the terminal without echo; and a new
 * password for `user add` / `user passwd` (`--new-password`, else typed twice on the terminal;
 * `user add --no-password` for a user that authenticates by client certificate only).
 *
 * `--no-password` is yargs' negation of the global `--password`: it arrives as `password: false`
 * (with both, as an array), so `passwordFlag` reads the two apart.
 *
 * Must never: echo or print a password; ask for one when stdin is not a terminal (a script would
 * hang: it is a usage error instead).
 */

import type { AuthCredentials } from '../api.js';
import { UsageError } from './output.js';

/** Somewhere to type a password, or nowhere. */
export interface Asker {
  readonly interactive: boolean;
  /** Ask `question` on stderr, read a line without echoing it. */
  ask(question: string): Promise<string>;
}

/** The process's terminal: interactive when stdin is a TTY. */
export const TERMINAL: Asker = {
  get interactive(): boolean {
    return process.stdin.isTTY === true;
  },
  ask: askHidden,
};

/** `--password` as yargs parses it: the login password (a string), and whether `--no-password` was given. */
export function passwordFlag(value: unknown): { readonly password: string | undefined; readonly none: boolean } {
  const values: unknown[] = Array.isArray(value) ? value : value === undefined ? [] : [value];
  const given = values.filter((v): v is string => typeof v === 'string');
  if (given.length > 1) throw new UsageError('--password: given more than once');
  if (given[0] === '') throw new UsageError('--password: empty (leave it out to be asked for it)');
  return { password: given[0], none: values.includes(false) };
}

/**
 * The login of `--user` (NAME:PASSWORD, or NAME with --password, WARDEN_PASSWORD or a password
 * typed on the terminal); undefined without `--user` (WARDEN_PASSWORD alone is ignored: it may be
 * set for another cluster's user).
 */
export async function credentialsOf(user: unknown, passwordArg: unknown, envPassword: string | undefined, asker: Asker): Promise<AuthCredentials | undefined> {
  const { password: flag } = passwordFlag(passwordArg);
  if (typeof user !== 'string' || user === '') {
    if (flag !== undefined) throw new UsageError('--password needs --user NAME');
    return undefined;
  }
  const colon = user.indexOf(':');
  const name = colon < 0 ? user : user.slice(0, colon);
  const inline = colon < 0 || colon === user.length - 1 ? undefined : user.slice(colon + 1);
  if (name === '') throw new UsageError('--user (or WARDEN_USER): NAME or NAME:PASSWORD, got an empty name');
  if (inline !== undefined && flag !== undefined) throw new UsageError('the password is given twice: --user NAME:PASSWORD and --password (give one)');
  const password = inline ?? flag ?? (envPassword === '' ? undefined : envPassword) ?? (asker.interactive ? await asker.ask(`Password for ${name}: `) : undefined);
  if (password === undefined) throw new UsageError(`--user ${name}: give its password (--user ${name}:PASSWORD, --password, or WARDEN_PASSWORD): stdin is not a terminal to type it on`);
  if (password === '') throw new UsageError(`--user ${name}: no password typed`);
  return { user: name, password };
}

/**
 * The new password of `name` for `user add` (`allowNone`: --no-password may leave it without one)
 * and `user passwd`: `--new-password`, else typed twice on the terminal.
 */
export async function newPasswordOf(name: string, newPassword: unknown, none: boolean, allowNone: boolean, asker: Asker): Promise<string | undefined> {
  if (none && !allowNone) throw new UsageError('--no-password: only `user add` takes it (a user without a password)');
  if (none && newPassword !== undefined) throw new UsageError('--new-password and --no-password: give one');
  if (none) return undefined;
  if (newPassword !== undefined) {
    if (typeof newPassword !== 'string' || newPassword === '') throw new UsageError('--new-password: give a non-empty password');
    return newPassword;
  }
  if (!asker.interactive) throw new UsageError(`give ${name}'s password with --new-password${allowNone ? ' (or --no-password: a user that authenticates by client certificate only)' : ''}: stdin is not a terminal to type it on`);
  const first = await asker.ask(`New password for ${name}: `);
  if (first === '') throw new UsageError('no password typed');
  const again = await asker.ask(`Type it again: `);
  if (again !== first) throw new UsageError('the two passwords typed differ');
  return first;
}

/** A line read from the terminal with echo off (raw mode); Ctrl-C exits 130 as it would anywhere else. */
function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return new Promise((resolve) => {
    let typed: string[] = [];
    const wasRaw = stdin.isRaw;
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(typed.join(''));
          return;
        }
        if (ch === '\u0003') {
          finish();
          process.exit(130);
        }
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch === '\u0015') typed = []; // Ctrl-U
        else if (ch >= ' ') typed.push(ch);
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
