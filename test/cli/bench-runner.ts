/**
 * A stand-alone entry for `warden bench` while client/cli/main.ts is wired by the lead: the same
 * yargs global options (`--endpoints`, `--output`, `--timeout`) and the bench command alone.
 * test/cli/bench.test.ts runs it as a real process; the figures in the README use it too.
 *
 * Must never: be shipped (it lives under test/); differ from main.ts in the options it gives bench.
 */

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchCommand } from '../../client/cli/bench/command.js';

await yargs(hideBin(process.argv))
  .scriptName('warden')
  .option('endpoints', { type: 'string', describe: 'members\' client URLs, comma-separated' })
  .option('output', { choices: ['table', 'json', 'simple'] as const, default: 'table' as const })
  .option('timeout', { type: 'number', default: 10_000, describe: 'per-call deadline, ms' })
  .env('WARDEN')
  .command(benchCommand)
  .demandCommand(1)
  .strict()
  .fail((message, error) => {
    // yargs' own usage errors arrive as a message, a YError, or (from a failed .check) a string: exit 2.
    if (error instanceof Error && error.name !== 'YError') throw error;
    process.stderr.write(`${message ?? (error instanceof Error ? error.message : String(error))}\nRun with --help for usage.\n`);
    process.exit(2);
  })
  .parseAsync();
