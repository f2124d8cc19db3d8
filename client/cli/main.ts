#!/usr/bin/env node
/**
 * `warden`: the admin CLI, built on the public client library alone. Global options:
 * `--endpoints` (comma-separated ws:// URLs; default the local cluster of `npm start`; env
 * WARDEN_ENDPOINTS), `--output table|json|simple` (default: `table` on a terminal, `simple`
 * when stdout is a pipe, so scripts get bare values; env WARDEN_OUTPUT), `--timeout` (ms, a
 * call's deadline; env WARDEN_TIMEOUT), `--cacert`/`--cert`/`--key` (TLS), `--user NAME[:PASSWORD]`
 * and `--password` (env WARDEN_USER, WARDEN_PASSWORD; typed on the terminal when not given).
 * Exit codes: 0 success, 1 a failed operation (its error code printed), 2 bad usage.
 *
 * Pattern: Command — each family of commands is a module (commands/*.ts) registered from one
 * array; `action()` (commands/context.ts) runs each with a client and maps errors to exit codes.
 *
 * Must never: import server/; hang after a command ends (it exits when its handler returns);
 * exit 0 on bad usage.
 */

import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchCommand } from './bench/command.js';
import { authCommands } from './commands/auth.js';
import { checkCommand } from './commands/check.js';
import { alarmCommand, endpointCommand, memberCommand } from './commands/cluster.js';
import { DEFAULT_ENDPOINTS } from './commands/context.js';
import { kvCommands } from './commands/kv.js';
import { leaseCommand } from './commands/lease.js';
import { electCommand, lockCommand } from './commands/lock.js';
import { snapshotCommand } from './commands/snapshot.js';
import { txnCommand } from './commands/txn.js';
import { watchCommand } from './commands/watch.js';
import { FORMATS } from './output.js';

/** Every command family; `warden bench` (client/cli/bench/) is added here by the lead. */
const COMMANDS: readonly CommandModule<object, Record<string, unknown>>[] = [...kvCommands, watchCommand, txnCommand, leaseCommand, lockCommand, electCommand, memberCommand, alarmCommand, endpointCommand, snapshotCommand, checkCommand, ...authCommands, benchCommand as CommandModule<object, Record<string, unknown>>];

/** WARDEN_<NAME> from the environment, when set and not empty. */
function env(name: string): string | undefined {
  const value = process.env[`WARDEN_${name}`];
  return value === undefined || value === '' ? undefined : value;
}

const parser = yargs(hideBin(process.argv))
  .scriptName('warden')
  .usage('$0 <command> [options]\n\nTalk to a Warden cluster: read and write the namespace, watch it, hold locks, run elections, inspect members.')
  // Not `.env('WARDEN')`: with .strict() every other WARDEN_* variable (wardend's WARDEN_DATA_DIR,
  // the WARDEN_FENCING_TOKEN `warden lock` gives its command) would be an unknown option.
  // `warden lock NAME -- cmd --its-flags`: what follows `--` is kept whole, in argv['--'].
  .parserConfiguration({ 'populate--': true })
  .option('endpoints', { alias: 'e', type: 'string', default: env('ENDPOINTS') ?? DEFAULT_ENDPOINTS, defaultDescription: `env WARDEN_ENDPOINTS, else ${DEFAULT_ENDPOINTS}`, global: true, describe: 'members\' client URLs, comma-separated' })
  .option('output', { alias: 'o', choices: FORMATS, default: env('OUTPUT') ?? (process.stdout.isTTY === true ? 'table' : 'simple'), defaultDescription: 'env WARDEN_OUTPUT, else table on a terminal, simple in a pipe', global: true, describe: 'how results are printed' })
  .option('cacert', { type: 'string', global: true, default: env('CACERT'), defaultDescription: 'env WARDEN_CACERT', describe: 'for wss:// endpoints: the CA (PEM) that signed the members\' certificates' })
  .option('cert', { type: 'string', global: true, default: env('CERT'), defaultDescription: 'env WARDEN_CERT', describe: 'a client certificate (PEM), with --key' })
  .option('key', { type: 'string', global: true, default: env('KEY'), defaultDescription: 'env WARDEN_KEY', describe: 'the key of --cert (PEM)' })
  .option('user', { type: 'string', global: true, default: env('USER'), defaultDescription: 'env WARDEN_USER', describe: 'once auth is on: who to speak as, NAME or NAME:PASSWORD' })
  // No default: WARDEN_PASSWORD is read with --user (credentials.ts), and `--no-password` (user add) arrives here as false.
  .option('password', { type: 'string', global: true, defaultDescription: 'env WARDEN_PASSWORD, else typed on the terminal', describe: 'the password of --user NAME' })
  .option('timeout', { type: 'number', global: true, default: env('TIMEOUT') === undefined ? undefined : Number(env('TIMEOUT')), defaultDescription: 'env WARDEN_TIMEOUT, else 10000', describe: 'a call\'s deadline in ms, retries included' })
  .command(COMMANDS as CommandModule<object, Record<string, unknown>>[])
  .completion('completion', 'print a shell completion script (bash/zsh): warden completion >> ~/.bashrc')
  .example('$0 put /config/db postgres://db1', 'set a value')
  .example('$0 get /config/db -o simple', 'print the value alone')
  .example('$0 watch /config --scope subtree', 'follow every change under /config')
  .example('$0 lock backups -- ./backup.sh', 'run a command while holding /locks/backups')
  .example('WARDEN_ENDPOINTS=ws://10.0.0.1:7071 $0 endpoint status', 'a remote cluster\'s members')
  .example('$0 --user alice get /config/db', 'once auth is on: as alice (her password typed, unechoed)')
  .demandCommand(1, 'Say which command to run (warden --help lists them).')
  .recommendCommands()
  .strict()
  .help()
  .alias('help', 'h')
  .version(false)
  .wrap(Math.min(120, process.stdout.columns ?? 100))
  .fail((message, error) => {
    if (error !== undefined && error !== null && message === null) {
      // An error from a handler escaped action(): a bug, but report it as a failed operation.
      process.stderr.write(`Error: ${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`Error: ${message ?? error?.message ?? 'bad usage'}\nRun \`warden --help\` (or \`warden <command> --help\`) for usage.\n`);
    process.exit(2);
  });

await parser.parseAsync();
// Handlers closed their clients; exit now (with their code) rather than wait for stray timers.
process.exit(process.exitCode ?? 0);
