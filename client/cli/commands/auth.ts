/**
 * `warden auth enable|disable|status`, `warden user add|delete|passwd|list|grant-role|revoke-role`
 * and `warden role add|delete|grant|revoke|list`: auth and its users and roles, through the
 * client's admin calls (client/auth.ts). A new password comes from `--new-password` or is typed
 * twice on the terminal (credentials.ts); `user add --no-password` makes a user that
 * authenticates by client certificate only.
 *
 * Must never: print a password; retry a change whose outcome is unknown (the client does not,
 * and the error printed says to check first).
 */

import type { Argv, CommandModule } from 'yargs';
import type { Access, AuthChange } from '../../api.js';
import { newPasswordOf, TERMINAL } from '../credentials.js';
import { UsageError } from '../output.js';
import { action, path, type Context } from './context.js';

type Args = Record<string, unknown>;

const ACCESS: readonly Access[] = ['read', 'write', 'admin'];

/** A change done: a line for people and scripts, the names and revisions for json. */
function changed(ctx: Context, line: string, fields: Record<string, unknown>, result: AuthChange): void {
  ctx.out.print({ json: { ...fields, revision: result.revision, authRevision: result.authRevision }, simple: [line] });
}

const name = (value: unknown, what: string): string => {
  const text = String(value ?? '');
  if (text === '') throw new UsageError(`${what}: give a name`);
  return text;
};

// auth

const authEnable: CommandModule<object, Args> = {
  command: 'enable',
  describe: 'turn auth on: every request then needs a user (password, token or client certificate)',
  builder: (y) => y.example('$0 --user root:PASSWORD auth enable', 'turn auth on as root (add root, with admin on /, first)'),
  handler: action(async (ctx) => {
    changed(ctx, 'auth enabled', { enabled: true }, await ctx.client.auth.enable());
  }),
};

const authDisable: CommandModule<object, Args> = {
  command: 'disable',
  describe: 'turn auth off (needs admin on /)',
  builder: (y) => y.example('$0 --user root auth disable', 'turn auth off as root (its password asked for)'),
  handler: action(async (ctx) => {
    changed(ctx, 'auth disabled', { enabled: false }, await ctx.client.auth.disable());
  }),
};

const authStatus: CommandModule<object, Args> = {
  command: 'status',
  describe: 'whether auth is on, its revision, and whom this connection speaks as',
  builder: (y) => y.example('$0 auth status', 'ENABLED, AUTH REVISION, USER'),
  handler: action(async (ctx) => {
    const status = await ctx.client.auth.status();
    ctx.out.print({
      json: status,
      simple: [`${status.enabled ? 'enabled' : 'disabled'} ${status.authRevision} ${status.user ?? '-'}`],
      table: { columns: ['ENABLED', 'AUTH REVISION', 'USER'], rows: [[status.enabled, status.authRevision, status.user]] },
    });
  }),
};

export const authCommand: CommandModule<object, Args> = {
  command: 'auth <command>',
  describe: 'turn auth on or off, and see its status',
  builder: (y) => y.command([authEnable, authDisable, authStatus]).demandCommand(1, 'say which: enable, disable or status'),
  handler: () => undefined,
};

// user

const withName = (y: Argv): Argv => y.positional('name', { type: 'string', describe: 'the user' });

const userAdd: CommandModule<object, Args> = {
  command: 'add <name>',
  describe: 'add a user (its password from --new-password, or typed twice; --no-password: client certificate only)',
  builder: (y) =>
    withName(y)
      .option('new-password', { type: 'string', describe: 'the new user\'s password (else typed on the terminal)' })
      .example('$0 user add alice', 'add alice, typing her password twice')
      .example('$0 user add ci --new-password "$CI_PASSWORD"', 'from a script')
      .example('$0 user add web-1 --no-password', 'a user that authenticates by client certificate (CN=web-1) only'),
  handler: action(async (ctx, args) => {
    const user = name(args['name'], 'NAME');
    const password = await newPasswordOf(user, args['new-password'], ctx.noPassword, true, TERMINAL);
    changed(ctx, `user ${user} added`, { user, password: password !== undefined }, await ctx.client.users.add(user, password));
  }),
};

const userDelete: CommandModule<object, Args> = {
  command: 'delete <name>',
  describe: 'delete a user (its connections are refused from then)',
  builder: (y) => withName(y).example('$0 user delete alice', 'delete alice'),
  handler: action(async (ctx, args) => {
    const user = name(args['name'], 'NAME');
    changed(ctx, `user ${user} deleted`, { user }, await ctx.client.users.delete(user));
  }),
};

const userPasswd: CommandModule<object, Args> = {
  command: 'passwd <name>',
  describe: 'set a user\'s password (from --new-password, or typed twice); its logins with the old one lapse',
  builder: (y) =>
    withName(y)
      .option('new-password', { type: 'string', describe: 'the new password (else typed on the terminal)' })
      .example('$0 user passwd alice', 'type alice\'s new password twice'),
  handler: action(async (ctx, args) => {
    const user = name(args['name'], 'NAME');
    const password = (await newPasswordOf(user, args['new-password'], ctx.noPassword, false, TERMINAL))!;
    changed(ctx, `password of ${user} changed`, { user }, await ctx.client.users.passwd(user, password));
  }),
};

const userGrantRole: CommandModule<object, Args> = {
  command: 'grant-role <name> <role>',
  describe: 'give a user a role',
  builder: (y) => withName(y).positional('role', { type: 'string' }).example('$0 user grant-role alice readers', 'alice gets what readers may do'),
  handler: action(async (ctx, args) => {
    const [user, role] = [name(args['name'], 'NAME'), name(args['role'], 'ROLE')];
    changed(ctx, `role ${role} granted to ${user}`, { user, role }, await ctx.client.users.grantRole(user, role));
  }),
};

const userRevokeRole: CommandModule<object, Args> = {
  command: 'revoke-role <name> <role>',
  describe: 'take a role from a user',
  builder: (y) => withName(y).positional('role', { type: 'string' }).example('$0 user revoke-role alice readers', 'alice no longer has readers'),
  handler: action(async (ctx, args) => {
    const [user, role] = [name(args['name'], 'NAME'), name(args['role'], 'ROLE')];
    changed(ctx, `role ${role} revoked from ${user}`, { user, role }, await ctx.client.users.revokeRole(user, role));
  }),
};

const userList: CommandModule<object, Args> = {
  command: 'list',
  describe: 'every user, its roles, and whether it has a password (needs admin on /)',
  builder: (y) => y.example('$0 user list', 'NAME, ROLES, PASSWORD'),
  handler: action(async (ctx) => {
    const users = await ctx.client.users.list();
    ctx.out.print({
      json: users,
      simple: users.map((u) => `${u.name} ${u.roles.length === 0 ? '-' : u.roles.join(',')}`),
      table: { columns: ['NAME', 'ROLES', 'PASSWORD'], rows: users.map((u) => [u.name, u.roles.length === 0 ? '-' : u.roles.join(','), u.password ? 'yes' : 'no (certificate only)']) },
    });
  }),
};

export const userCommand: CommandModule<object, Args> = {
  command: 'user <command>',
  describe: 'add, delete and list users, set passwords, grant and revoke roles',
  builder: (y) => y.command([userAdd, userDelete, userPasswd, userGrantRole, userRevokeRole, userList]).demandCommand(1, 'say which: add, delete, passwd, grant-role, revoke-role or list'),
  handler: () => undefined,
};

// role

const withRole = (y: Argv): Argv => y.positional('name', { type: 'string', describe: 'the role' });

const roleAdd: CommandModule<object, Args> = {
  command: 'add <name>',
  describe: 'add a role (no permissions yet)',
  builder: (y) => withRole(y).example('$0 role add readers', 'a new role'),
  handler: action(async (ctx, args) => {
    const role = name(args['name'], 'NAME');
    changed(ctx, `role ${role} added`, { role }, await ctx.client.roles.add(role));
  }),
};

const roleDelete: CommandModule<object, Args> = {
  command: 'delete <name>',
  describe: 'delete a role (its users lose what it granted)',
  builder: (y) => withRole(y).example('$0 role delete readers', 'delete a role'),
  handler: action(async (ctx, args) => {
    const role = name(args['name'], 'NAME');
    changed(ctx, `role ${role} deleted`, { role }, await ctx.client.roles.delete(role));
  }),
};

const roleGrant: CommandModule<object, Args> = {
  command: 'grant <name> <path> <access>',
  describe: 'let a role read, write or administer a path and its whole subtree (/ is everything)',
  builder: (y) =>
    withRole(y)
      .positional('path', { type: 'string' })
      .positional('access', { choices: ACCESS, describe: 'read, write (includes read) or admin (includes both)' })
      .example('$0 role grant readers /config read', 'readers may read /config and below')
      .example('$0 role grant root / admin', 'everything'),
  handler: action(async (ctx, args) => {
    const role = name(args['name'], 'NAME');
    const where = path(args['path']);
    const access = args['access'] as Access;
    if (!ACCESS.includes(access)) throw new UsageError(`ACCESS: one of ${ACCESS.join(', ')}, got ${JSON.stringify(args['access'])}`);
    changed(ctx, `role ${role} may ${access} ${where}`, { role, path: where, access }, await ctx.client.roles.grant(role, where, access));
  }),
};

const roleRevoke: CommandModule<object, Args> = {
  command: 'revoke <name> <path>',
  describe: 'take back what a role was granted on a path',
  builder: (y) => withRole(y).positional('path', { type: 'string' }).example('$0 role revoke readers /config', 'readers lose their grant on /config'),
  handler: action(async (ctx, args) => {
    const role = name(args['name'], 'NAME');
    const where = path(args['path']);
    changed(ctx, `role ${role} revoked on ${where}`, { role, path: where }, await ctx.client.roles.revoke(role, where));
  }),
};

const roleList: CommandModule<object, Args> = {
  command: 'list',
  describe: 'every role and its permissions, a row each (needs admin on /)',
  builder: (y) => y.example('$0 role list', 'ROLE, PATH, ACCESS'),
  handler: action(async (ctx) => {
    const roles = await ctx.client.roles.list();
    const rows = roles.flatMap((r) => (r.permissions.length === 0 ? [[r.name, null, null]] : r.permissions.map((p) => [r.name, p.path, p.access])));
    ctx.out.print({ json: roles, simple: rows.map((row) => row.map((c) => c ?? '-').join(' ')), table: { columns: ['ROLE', 'PATH', 'ACCESS'], rows } });
  }),
};

export const roleCommand: CommandModule<object, Args> = {
  command: 'role <command>',
  describe: 'add, delete and list roles, grant and revoke their access to paths',
  builder: (y) => y.command([roleAdd, roleDelete, roleGrant, roleRevoke, roleList]).demandCommand(1, 'say which: add, delete, grant, revoke or list'),
  handler: () => undefined,
};

export const authCommands: readonly CommandModule<object, Args>[] = [authCommand, userCommand, roleCommand];
