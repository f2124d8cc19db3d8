/**
 * `npm run sim -- --seed-start S --seeds N [--nodes 3|5]`: runs simulator seeds across worker
 * processes, prints figures, and on any violation prints the seed, the broken property and the
 * command that replays that one seed with a readable trace. Exits 1 on a violation, 2 on bad usage.
 *
 * Must never: report success for a seed it did not run, or hide a linearizability check that
 * ran out of time.
 */

import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runSimulation, type SimOptions, type SimResult } from './simulation.js';
import { PLANTED_BUGS, type PlantedBugName } from './plant.js';
import type { WorkerRequest } from './worker.js';

type Summary = Omit<SimResult, 'history'> & { readonly wallMs: number };

const argv = yargs(hideBin(process.argv))
  .scriptName('npm run sim --')
  .usage('$0 --seed-start S --seeds N [--nodes 3|5]')
  .option('seed-start', { type: 'number', default: 1, describe: 'first seed' })
  .option('seeds', { type: 'number', default: 100, describe: 'how many seeds' })
  .option('nodes', { type: 'number', choices: [3, 4, 5], describe: 'cluster size (default: each seed chooses 3 or 5)' })
  .option('steps', { type: 'number', default: 20_000, describe: 'events per seed in the chaos phase' })
  .option('workers', { type: 'number', default: availableParallelism(), describe: 'worker processes' })
  .option('trace', { type: 'boolean', default: false, describe: 'print the readable trace of each seed (use with --seeds 1)' })
  .option('bug', { type: 'string', choices: Object.keys(PLANTED_BUGS), describe: 'plant a known bug (to see the simulator catch it)' })
  .option('json', { type: 'boolean', default: false, describe: 'print the summary as one JSON line' })
  .strict()
  .fail((message, error, y) => {
    process.stderr.write(`${error?.message ?? message}\n\n${y.help()}\n`);
    process.exit(2);
  })
  .help()
  .parseSync();

const options: Omit<SimOptions, 'seed'> = {
  steps: argv.steps,
  ...(argv.nodes !== undefined ? { nodes: argv.nodes as 3 | 4 | 5 } : {}),
  ...(argv.bug !== undefined ? { plantedBugs: PLANTED_BUGS[argv.bug as PlantedBugName].plantedBugs } : {}),
};
const seeds = Array.from({ length: argv.seeds }, (_, i) => argv['seed-start'] + i);

function replayCommand(seed: number): string {
  const parts = [`npm run sim -- --seed-start ${seed} --seeds 1 --trace`];
  if (argv.nodes !== undefined) parts.push(`--nodes ${argv.nodes}`);
  if (argv.steps !== 20_000) parts.push(`--steps ${argv.steps}`);
  if (argv.bug !== undefined) parts.push(`--bug ${argv.bug}`);
  return parts.join(' ');
}

async function runInWorkers(): Promise<Summary[]> {
  const results: Summary[] = [];
  const queue = [...seeds];
  const workerCount = Math.max(1, Math.min(argv.workers, seeds.length));
  const workerPath = fileURLToPath(new URL('./worker.ts', import.meta.url));
  let reported = 0;
  const progressEvery = Math.max(1, Math.ceil(seeds.length / 10));
  const runWorker = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const child: ChildProcess = fork(workerPath, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const next = (): void => {
        const seed = queue.shift();
        const request: WorkerRequest = seed === undefined ? { stop: true } : { seed, options };
        child.send(request);
      };
      child.on('message', (summary: Summary) => {
        results.push(summary);
        if (++reported % progressEvery === 0 && !argv.json) process.stderr.write(`  ${reported}/${seeds.length} seeds\n`);
        next();
      });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a simulator worker exited with code ${code}`))));
      next();
    });
  await Promise.all(Array.from({ length: workerCount }, runWorker));
  return results.sort((a, b) => a.seed - b.seed);
}

async function runInProcess(): Promise<Summary[]> {
  const summaries: Summary[] = [];
  for (const seed of seeds) {
    const startedMs = performance.now();
    const result = await runSimulation({ ...options, seed, trace: argv.trace });
    if (argv.trace) process.stdout.write(result.trace.join('\n') + '\n');
    summaries.push({ ...result, wallMs: performance.now() - startedMs });
  }
  return summaries;
}

const startedMs = performance.now();
const results = argv.trace || seeds.length === 1 ? await runInProcess() : await runInWorkers();
const wallMs = performance.now() - startedMs;

const unknown = results.filter((r) => r.violation === null && r.linearizability !== 'ok');
// A history the checker could not prove either way is not a pass.
const failures = results.filter((r) => r.violation !== null || r.linearizability !== 'ok');
const total = (pick: (r: Summary) => number): number => results.reduce((sum, r) => sum + pick(r), 0);
const figures = {
  seeds: results.length,
  failures: failures.length,
  steps: total((r) => r.steps),
  operations: total((r) => r.operations),
  dropped: total((r) => r.faults.dropped),
  duplicated: total((r) => r.faults.duplicated),
  partitions: total((r) => r.faults.partitions),
  crashes: total((r) => r.faults.crashes),
  pauses: total((r) => r.faults.pauses),
  transfers: total((r) => r.faults.transfers),
  elections: total((r) => r.coverage.elections),
  snapshotsInstalled: total((r) => r.coverage.snapshotInstalled),
  leaderReads: total((r) => r.coverage.leaderRead),
  followerReads: total((r) => r.coverage.followerRead),
  unknownOutcomes: total((r) => r.coverage.unknownOutcomes),
  leasesExpired: total((r) => r.coverage.leasesExpired),
  leaseRenewals: total((r) => r.coverage.leaseRenewals),
  watchedRevisions: total((r) => r.coverage.watchedRevisions),
  watchResumes: total((r) => r.coverage.watchResumes),
  powerCuts: total((r) => r.coverage.powerCuts),
  batchesTorn: total((r) => r.coverage.batchesTorn),
  tornTailsCut: total((r) => r.coverage.tornTailsCut),
  walSegmentsDeleted: total((r) => r.coverage.walSegmentsDeleted),
  membershipChanges: total((r) => r.coverage.membershipChanges),
  linearizabilityUnknown: unknown.length,
  maxLeaderAfterHealTicks: Math.max(0, ...results.map((r) => r.leaderAfterHealTicks ?? 0)),
  maxClientsDoneAfterHealTicks: Math.max(0, ...results.map((r) => r.clientsDoneAfterHealTicks ?? 0)),
  wallSeconds: Math.round(wallMs / 100) / 10,
  seedsPerMinute: Math.round((results.length / wallMs) * 60_000),
};

if (argv.json) {
  process.stdout.write(JSON.stringify(figures) + '\n');
} else {
  const rows: [string, string | number][] = [
    ['seeds', `${figures.seeds} (${argv['seed-start']}..${argv['seed-start'] + argv.seeds - 1})${argv.bug ? `, planted bug: ${argv.bug}` : ''}`],
    ['steps', figures.steps],
    ['client operations', figures.operations],
    ['faults', `${figures.dropped} dropped, ${figures.duplicated} duplicated, ${figures.partitions} partitions, ${figures.crashes} crashes, ${figures.pauses} pauses, ${figures.transfers} transfers`],
    ['exercised', `${figures.elections} elections, ${figures.snapshotsInstalled} snapshots installed, ${figures.leaderReads} reads on leaders, ${figures.followerReads} on followers, ${figures.unknownOutcomes} unknown outcomes`],
    ['leases, watches', `${figures.leaseRenewals} keep-alives renewed, ${figures.leasesExpired} leases expired; ${figures.watchedRevisions} revisions watched, ${figures.watchResumes} watches resumed`],
    ['disks', `${figures.powerCuts} power cuts during a WAL sync (${figures.batchesTorn} batches torn), ${figures.tornTailsCut} torn tails cut at recovery, ${figures.walSegmentsDeleted} segments compacted away`],
    ['membership', `${figures.membershipChanges} changes committed (add, promote, remove)`],
    ['leader after heal', `≤ ${figures.maxLeaderAfterHealTicks} ticks`],
    ['clients done after heal', `≤ ${figures.maxClientsDoneAfterHealTicks} ticks`],
    ['wall time', `${figures.wallSeconds} s (${figures.seedsPerMinute} seeds/min)`],
  ];
  for (const [name, value] of rows) process.stdout.write(`${name.padEnd(24)} ${value}\n`);
}
for (const r of unknown) {
  process.stdout.write(`seed ${r.seed} FAILED: linearizability check ${r.linearizability} (history not proven either way)\n`);
}
for (const r of failures) {
  const v = r.violation;
  if (v === null) continue;
  process.stdout.write(`\nseed ${r.seed} (${r.nodes} members) FAILED at step ${v.step}, t=${v.atMs} ms\n`);
  process.stdout.write(`  property: ${v.property}\n  detail:   ${v.detail.split('\n')[0]}\n  replay:   ${replayCommand(r.seed)}\n`);
}
process.stdout.write(`${results.length - failures.length} passed, ${failures.length} failed\n`);
process.exit(failures.length > 0 ? 1 : 0);
