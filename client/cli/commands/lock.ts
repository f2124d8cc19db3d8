/**
 * `warden lock NAME [-- command args...]` and `warden elect NAME [VALUE]` / `elect --observe NAME`:
 * the Lock and Election recipes from the shell. NAME is a path below `/locks/` (lock) or
 * `/elections/` (elect) unless it starts with `/`, then it is the path itself.
 *
 * lock with a command: waits for the lock, runs the command with WARDEN_FENCING_TOKEN (and
 * WARDEN_LOCK_PATH) in its environment, releases when it ends and exits with its code (128+N
 * when killed by signal N); if the lock is lost meanwhile the command gets SIGTERM and warden
 * exits 1. Ctrl-C is passed on to the command. Without a command: prints the token and holds
 * until Ctrl-C. Notes go to stderr, so the command's stdout stays its own.
 *
 * Must never: start the command before the lock is held; release before the command ended;
 * exit 0 after the lock was lost.
 */

import { spawn } from 'node:child_process';
import { constants, hostname } from 'node:os';
import type { CommandModule } from 'yargs';
import { Election, Lock, WardenError } from '../../api.js';
import { UsageError } from '../output.js';
import { action, integer } from './context.js';

type Args = Record<string, unknown>;

const under = (root: string, name: unknown): string => {
  const text = String(name);
  if (text === '' || text === '/') throw new UsageError('NAME: give a lock or election name, e.g. orders');
  return text.startsWith('/') ? text : `${root}/${text}`;
};

const ttlOption = { type: 'string', default: '10000', describe: 'TTL of the session holding it (ms): how long a crashed holder keeps it' } as const;

export const lockCommand: CommandModule<object, Args> = {
  command: 'lock <name> [command..]',
  describe: 'hold a lock (/locks/NAME); run a command while holding it, or hold until Ctrl-C',
  builder: (y) =>
    y
      .positional('name', { type: 'string', describe: 'the lock: /locks/NAME, or a path if it starts with /' })
      .positional('command', { type: 'string', array: true, describe: 'the command to run while holding it (after --)' })
      .option('ttl', ttlOption)
      .option('wait', { type: 'string', describe: 'give up after this many ms of waiting (exit 1)' })
      .example('$0 lock backups -- ./backup.sh --full', 'run backup.sh while holding /locks/backups; it sees WARDEN_FENCING_TOKEN')
      .example('$0 lock deploy', 'hold /locks/deploy until Ctrl-C'),
  handler: action(async (ctx, args) => {
    const lockPath = under('/locks', args['name']);
    const command = [...((args['command'] as unknown[] | undefined) ?? []), ...((args['--'] as unknown[] | undefined) ?? [])].map(String);
    const ttlMs = integer(args['ttl'], '--ttl', 1);
    const wait = args['wait'] === undefined ? undefined : integer(args['wait'], '--wait', 1);
    const lock = new Lock(ctx.client, lockPath, { ttlMs });
    try {
      ctx.out.note(`waiting for ${lockPath}...`);
      let token: number;
      try {
        token = await lock.acquire({ signal: ctx.signal, ...(wait === undefined ? {} : { timeoutMs: wait }) });
      } catch (error) {
        if (!ctx.signal.aborted) throw error;
        ctx.out.note(`gave up waiting for ${lockPath}`);
        return 130;
      }
      if (command.length === 0) {
        ctx.out.print({ json: { path: lockPath, entry: lock.entryPath, token }, simple: [String(token)], table: [`holding ${lockPath} (fencing token ${token}); Ctrl-C to release`] });
        const lost = new Promise<WardenError>((resolve) => lock.on('lost', resolve));
        const outcome = await Promise.race([ctx.interrupted().then(() => null), lost]);
        if (outcome !== null) throw outcome;
        return 0;
      }
      ctx.out.note(`holding ${lockPath} (fencing token ${token}); running ${command.join(' ')}`);
      const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, WARDEN_FENCING_TOKEN: String(token), WARDEN_LOCK_PATH: lockPath } });
      let lostError: WardenError | null = null;
      const offLost = lock.on('lost', (error) => {
        lostError = error;
        ctx.out.note(`lost ${lockPath} (${error.code}); sending SIGTERM to the command`);
        child.kill('SIGTERM');
      });
      const forward = (): void => void child.kill('SIGINT');
      ctx.signal.addEventListener('abort', forward, { once: true });
      const code = await new Promise<number>((resolve, reject) => {
        child.once('error', (error) => reject(new UsageError(`cannot run ${command[0]}: ${error.message}`)));
        child.once('exit', (exitCode, signal) => resolve(exitCode ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0))));
      });
      offLost();
      ctx.signal.removeEventListener('abort', forward);
      if (lostError !== null) throw lostError;
      return code;
    } finally {
      await lock.close().catch((error: unknown) => ctx.out.error(error));
    }
  }, { long: true }),
};

export const electCommand: CommandModule<object, Args> = {
  command: 'elect <name> [value]',
  describe: 'campaign in an election (/elections/NAME) and hold office until Ctrl-C, or --observe it',
  builder: (y) =>
    y
      .positional('name', { type: 'string', describe: 'the election: /elections/NAME, or a path if it starts with /' })
      .positional('value', { type: 'string', describe: 'what the leader proclaims (default host:pid)' })
      .option('observe', { type: 'boolean', default: false, describe: 'do not stand: print each change of leader' })
      .option('ttl', ttlOption)
      .example('$0 elect scheduler node-a', 'stand for /elections/scheduler; prints the term\'s fencing token once elected')
      .example('$0 elect --observe scheduler', 'print the leader, and each change of it'),
  handler: action(async (ctx, args) => {
    const electionPath = under('/elections', args['name']);
    if (args['observe'] === true) {
      // The election's node must exist for its children to be watched: make it (empty) if need be.
      await ctx.client.create(electionPath, '', { parents: true }).catch((error: unknown) => {
        if (!(error instanceof WardenError && error.code === 'NODE_EXISTS')) throw error;
      });
      const election = new Election(ctx.client, electionPath);
      try {
        for await (const leader of election.observe({ signal: ctx.signal })) {
          ctx.out.print({
            json: leader,
            simple: [leader === null ? '(no leader)' : `${leader.value} ${leader.token} ${leader.path}`],
            table: [leader === null ? 'no leader' : `leader ${leader.value} (token ${leader.token}, ${leader.path})`],
          });
        }
      } catch (error) {
        if (!ctx.signal.aborted) throw error;
      }
      return 0;
    }
    const value = args['value'] === undefined ? `${hostname()}:${process.pid}` : String(args['value']);
    const session = await ctx.client.session({ ttlMs: integer(args['ttl'], '--ttl', 1) });
    const election = new Election(ctx.client, electionPath, session);
    try {
      ctx.out.note(`campaigning in ${electionPath} as ${value}...`);
      const term = await election.campaign(value, { signal: ctx.signal });
      ctx.out.print({ json: { path: electionPath, value, token: term.token, node: term.path }, simple: [String(term.token)], table: [`elected in ${electionPath} (token ${term.token}); Ctrl-C to resign`] });
      const lost = new Promise<WardenError>((resolve) => election.on('lost', ({ error }) => resolve(error)));
      const outcome = await Promise.race([ctx.interrupted().then(() => null), lost]);
      if (outcome !== null) throw outcome;
      await election.resign();
      return 0;
    } catch (error) {
      if (ctx.signal.aborted && !(error instanceof WardenError && error.code === 'LEASE_NOT_FOUND')) return 0;
      throw error;
    } finally {
      await session.close().catch(() => undefined);
    }
  }, { long: true }),
};
