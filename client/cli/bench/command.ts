/**
 * `warden bench <workload>`: load a cluster through the public client library and report
 * throughput and a latency histogram (p50/p90/p99/p99.9/max), as a table, JSON (one object) or
 * key=value lines, with a live progress bar on a TTY and an optional self-contained HTML page.
 *
 * Its clients connect as every command's do: the global TLS files (--cacert/--cert/--key) and
 * login (--user/--password, commands/context.ts).
 *
 * Pattern: Command (a yargs CommandModule): parse and check options, open `conns` clients,
 * prepare the workload, drive it (runner.ts), print (report.ts, html.ts), close everything.
 *
 * Must never: import server/; leave a client open; print a progress bar off a TTY or with
 * `--output json` (stdout then holds exactly one JSON object).
 */

import { writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { connect, WardenError, type WardenClient } from '../../index.js';
import { accessOf } from '../commands/context.js';
import { UsageError } from '../output.js';
import { html } from './html.js';
import { simple, summarize, table } from './report.js';
import { run } from './runner.js';
import { prepare, WORKLOADS, type WorkloadName } from './workloads.js';

export interface BenchArgs {
  readonly workload: WorkloadName;
  readonly endpoints?: string;
  readonly output?: 'table' | 'json' | 'simple';
  readonly timeout?: number;
  readonly clients: number;
  readonly conns: number;
  readonly total?: number;
  readonly duration?: number;
  readonly rate: number;
  readonly 'key-size': number;
  readonly 'val-size': number;
  readonly 'key-space': number;
  readonly prefix: string;
  readonly consistency: 'linearizable' | 'serializable';
  readonly html?: string;
}

const DEFAULT_ENDPOINTS = 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';
const DEFAULT_TOTAL = 10_000;

export function builder(yargs: Argv): Argv<BenchArgs> {
  return yargs
    .positional('workload', { describe: 'what to load the cluster with', choices: WORKLOADS, demandOption: true })
    .option('clients', { type: 'number', default: 16, describe: 'requests in flight at once (concurrent requesters)' })
    .option('conns', { type: 'number', default: 1, describe: 'client connections; requesters are spread over them' })
    .option('total', { type: 'number', describe: `operations to issue (default ${DEFAULT_TOTAL} unless --duration)` })
    .option('duration', { type: 'number', describe: 'run for this many seconds instead of --total' })
    .conflicts('total', 'duration')
    .option('rate', { type: 'number', default: 0, describe: 'cap on operations per second across all requesters (0 = no cap)' })
    .option('key-size', { type: 'number', default: 8, describe: 'characters in each key name' })
    .option('val-size', { type: 'number', default: 256, describe: 'bytes in each value' })
    .option('key-space', { type: 'number', default: 1000, describe: 'distinct keys (or locks, elections) used' })
    .option('prefix', { type: 'string', default: '/bench', describe: 'path every key is made under' })
    .option('consistency', { choices: ['linearizable', 'serializable'] as const, default: 'linearizable' as const, describe: 'reads (get, range): linearizable or serializable' })
    .option('html', { type: 'string', describe: 'also write a self-contained HTML page of the run to this file' })
    .check((argv) => {
      // A string answer is yargs' usage failure (exit 2 with the message), not a thrown error.
      const whole = (name: string, value: unknown, min: number): string | null =>
        value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min) ? `--${name} must be a whole number ≥ ${min}, got ${String(value)}` : null;
      const problems = [
        whole('clients', argv.clients, 1),
        whole('conns', argv.conns, 1),
        whole('total', argv.total, 1),
        whole('rate', argv.rate, 0),
        whole('key-size', argv['key-size'], 1),
        whole('val-size', argv['val-size'], 0),
        whole('key-space', argv['key-space'], 1),
        argv.duration !== undefined && !(typeof argv.duration === 'number' && argv.duration > 0) ? `--duration must be a number of seconds > 0, got ${String(argv.duration)}` : null,
        /^\/[^\s]*[^/]$/.test(String(argv.prefix)) ? null : `--prefix must be an absolute path not ending in /, got ${String(argv.prefix)}`,
      ].filter((p): p is string => p !== null);
      return problems.length === 0 ? true : problems.join('\n');
    })
    .example('$0 bench put --clients 64 --total 20000', '20,000 puts of 256-byte values, 64 in flight')
    .example('$0 bench get --consistency serializable --duration 10 --conns 4', 'serializable reads for 10 s over 4 connections')
    .example('$0 bench put --duration 30 --rate 2000 --html put.html', 'a steady 2,000 puts/s, with a picture') as unknown as Argv<BenchArgs>;
}

/** Run a bench and print it; answers the process exit code (0 ran, 1 could not run or nothing succeeded, 2 bad TLS or login options). */
export async function bench(argv: BenchArgs, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  const output = argv.output ?? 'table';
  const endpoints = argv.endpoints ?? process.env['WARDEN_ENDPOINTS'] ?? DEFAULT_ENDPOINTS;
  const timeoutMs = argv.timeout ?? 10_000;
  const conns = Math.min(argv.conns, argv.clients);
  let access: Awaited<ReturnType<typeof accessOf>>;
  try {
    access = await accessOf(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err.write(`${error.message}\nRun with --help for usage.\n`);
    return 2;
  }
  const clients: WardenClient[] = Array.from({ length: conns }, () => connect({ endpoints, timeoutMs, ...access }));
  const options = { prefix: argv.prefix, keySize: argv['key-size'], valSize: argv['val-size'], keySpace: argv['key-space'], consistency: argv.consistency, timeoutMs };
  let bar: cliProgress.SingleBar | null = null;
  try {
    // Every connection open and answering before the clock starts.
    await Promise.all(clients.map((c) => c.status({ timeoutMs })));
    const workload = await prepare(argv.workload, clients, options);
    const total = argv.duration === undefined ? (argv.total ?? DEFAULT_TOTAL) : undefined;
    if (err.isTTY === true && output !== 'json') {
      bar = new cliProgress.SingleBar(
        {
          stream: err,
          format: total === undefined ? `${argv.workload} {bar} {percentage}% | {secs}/${argv.duration} s | {done} ops | {rate} ops/s | failed {failed}` : `${argv.workload} {bar} {percentage}% | {value}/{total} ops | {rate} ops/s | failed {failed} | {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total ?? Math.round(argv.duration! * 10), 0, { rate: 0, failed: 0, done: 0, secs: '0.0' });
    }
    const startedAt = performance.now();
    let result;
    try {
      result = await run(workload.operation, {
        clients: argv.clients,
        rate: argv.rate,
        ...(total === undefined ? { durationS: argv.duration! } : { total }),
        ...(bar === null
          ? {}
          : {
              onTick: (done: number, failed: number) => {
                const secs = (performance.now() - startedAt) / 1000;
                const value = total === undefined ? Math.min(Math.round(secs * 10), Math.round(argv.duration! * 10)) : done;
                bar?.update(value, { rate: Math.round(done / Math.max(0.001, secs)), failed, done, secs: secs.toFixed(1) });
              },
            }),
      });
    } finally {
      bar?.stop();
      bar = null;
      await workload.close();
    }
    const summary = summarize(result, {
      workload: argv.workload,
      describe: workload.describe,
      endpoints,
      clients: argv.clients,
      conns,
      rate: argv.rate,
      keySize: argv['key-size'],
      valSize: argv['val-size'],
      keySpace: argv['key-space'],
      ...(argv.workload === 'get' || argv.workload === 'range' ? { consistency: argv.consistency } : {}),
    });
    if (argv.html !== undefined) writeFileSync(argv.html, html(summary));
    if (output === 'json') out.write(JSON.stringify(summary) + '\n');
    else if (output === 'simple') out.write(simple(summary));
    else out.write(table(summary, (out as NodeJS.WriteStream).isTTY === true));
    if (argv.html !== undefined && output !== 'json') err.write(`wrote ${argv.html}\n`);
    if (summary.ok === 0) {
      err.write(`error: no operation succeeded (${Object.entries(summary.errors).map(([c, n]) => `${c} ${n}`).join(', ')})\n`);
      return 1;
    }
    return 0;
  } catch (error) {
    bar?.stop();
    const code = error instanceof WardenError ? error.code : 'ERROR';
    const message = error instanceof Error ? error.message : String(error);
    err.write(`error ${code}: ${message}\n(the bench could not start; it changed nothing but keys under ${argv.prefix}: safe to run again)\n`);
    return 1;
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench <workload>',
  describe: `load the cluster and measure throughput and latency (${WORKLOADS.join(', ')})`,
  builder,
  handler: async (argv) => {
    process.exitCode = await bench(argv);
  },
};
