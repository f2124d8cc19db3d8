/**
 * `warden lease grant|revoke|keepalive|ttl|list`: leases by hand. `keepalive ID` keeps an
 * existing lease alive until Ctrl-C through a client session adopting that id (a grant with an
 * id that exists answers the existing lease; the session then renews it), and on Ctrl-C stops
 * renewing without revoking (the lease then lives out its TTL).
 *
 * Must never: revoke a lease the user only asked to keep alive.
 */

import type { CommandModule } from 'yargs';
import type { CallOptions } from '../../api.js';
import { action, integer } from './context.js';

type Args = Record<string, unknown>;

const grant: CommandModule<object, Args> = {
  command: 'grant <ttl>',
  describe: 'grant a lease of TTL milliseconds; prints its id',
  builder: (y) => y.positional('ttl', { type: 'string', describe: 'time to live in ms' }).example('$0 lease grant 10000', 'a 10-second lease'),
  handler: action(async (ctx, args) => {
    const info = await ctx.client.leases.grant(integer(args['ttl'], 'TTL', 1));
    ctx.out.print({ json: info, simple: [String(info.id)], table: [`lease ${info.id} granted with TTL ${info.ttlMs} ms`] });
  }),
};

const revoke: CommandModule<object, Args> = {
  command: 'revoke <id>',
  describe: 'revoke a lease (its ephemeral nodes are deleted now)',
  builder: (y) => y.positional('id', { type: 'string' }).example('$0 lease revoke 42', 'revoke lease 42'),
  handler: action(async (ctx, args) => {
    const id = integer(args['id'], 'ID', 1);
    await ctx.client.leases.revoke(id);
    ctx.out.print({ json: { id, revoked: true }, simple: [`lease ${id} revoked`] });
  }),
};

const ttl: CommandModule<object, Args> = {
  command: 'ttl <id>',
  describe: 'a lease\'s TTL and time left (--paths: the nodes it holds)',
  builder: (y) =>
    y
      .positional('id', { type: 'string' })
      .option('paths', { type: 'boolean', default: false, describe: 'list the ephemeral nodes on it' })
      .example('$0 lease ttl 42 --paths', 'time left and the nodes of lease 42'),
  handler: action(async (ctx, args) => {
    const id = integer(args['id'], 'ID', 1);
    const info = await ctx.client.leases.timeToLive(id, { paths: args['paths'] === true });
    const paths = info.paths ?? [];
    ctx.out.print({
      json: info,
      simple: [`lease ${info.id} ttl ${info.ttlMs} remaining ${info.remainingMs}`, ...paths],
      table: { columns: ['ID', 'TTL (ms)', 'REMAINING (ms)', 'PATHS'], rows: [[info.id, info.ttlMs, info.remainingMs, info.paths === undefined ? '-' : paths.join(' ')]] },
    });
  }),
};

const list: CommandModule<object, Args> = {
  command: 'list',
  describe: 'every lease in the cluster',
  builder: (y) => y.example('$0 lease list', 'ids and TTLs'),
  handler: action(async (ctx) => {
    const leases = await ctx.client.leases.list();
    ctx.out.print({ json: leases, simple: leases.map((l) => `${l.id} ${l.ttlMs}`), table: { columns: ['ID', 'TTL (ms)'], rows: leases.map((l) => [l.id, l.ttlMs]) } });
  }),
};

const keepalive: CommandModule<object, Args> = {
  command: 'keepalive <id>',
  describe: 'keep a lease alive until Ctrl-C (it is not revoked: it then lives out its TTL)',
  builder: (y) =>
    y
      .positional('id', { type: 'string' })
      .example('$0 lease keepalive 42', 'renew lease 42 every third of its TTL'),
  handler: action(async (ctx, args) => {
    const id = integer(args['id'], 'ID', 1);
    // Fail fast (LEASE_NOT_FOUND) for a lease that is gone, rather than granting a new one with its id.
    const now = await ctx.client.leases.timeToLive(id);
    const adopt = { ttlMs: now.ttlMs, id } as { readonly ttlMs: number } & CallOptions;
    const session = await ctx.client.session(adopt);
    if (session.lease !== id) throw new Error(`the cluster answered lease ${session.lease} for ${id}`);
    ctx.out.note(`keeping lease ${id} alive (TTL ${session.ttlMs} ms); Ctrl-C to stop`);
    session.on('renewed', ({ remainingMs }) => {
      ctx.out.print({ json: { id, remainingMs }, simple: [`lease ${id} renewed, ${remainingMs} ms left`] });
    });
    const lost = new Promise<Error>((resolve) => session.on('lost', (error) => resolve(error)));
    const outcome = await Promise.race([ctx.interrupted().then(() => null), lost]);
    if (outcome !== null) throw outcome;
  }, { long: true }),
};

export const leaseCommand: CommandModule<object, Args> = {
  command: 'lease <command>',
  describe: 'grant, revoke, keep alive and inspect leases',
  builder: (y) => y.command([grant, revoke, keepalive, ttl, list]).demandCommand(1, 'say which: grant, revoke, keepalive, ttl or list').example('$0 lease grant 10000', 'a 10-second lease'),
  handler: () => undefined,
};
