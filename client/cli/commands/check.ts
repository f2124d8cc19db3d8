/**
 * `warden check perf`: is this cluster's disk and network good enough? As etcdctl's: a fixed
 * write load (puts at a target rate from many requesters, for --duration seconds, 30 by
 * default) under a scratch prefix, then pass/fail on three checks — throughput at least 90% of
 * the target, the slowest put at most 500 ms, the standard deviation at most 100 ms — and no
 * failed put. Latencies go into an HDR histogram (hdr-histogram-js, microseconds). The prefix is
 * deleted afterwards. Exit 0 on pass, 1 on fail.
 *
 * Pattern: open-loop-ish pacing — put i is due at start + i/rate; a requester that falls behind
 * sends at once (so a slow cluster shows as low throughput, not as hidden queueing).
 *
 * Must never: write outside its prefix; leave its keys behind when it can delete them; run
 * past its duration by more than the in-flight puts' deadline.
 */

import { setMaxListeners } from 'node:events';
import * as hdr from 'hdr-histogram-js';
import type { CommandModule } from 'yargs';
import { WardenError, type WardenClient } from '../../api.js';
import { action, integer, path } from './context.js';

type Args = Record<string, unknown>;

/** etcdctl's load profiles: target puts/s and concurrent requesters. */
const LOADS = {
  s: { rate: 150, clients: 50 },
  m: { rate: 1_000, clients: 200 },
  l: { rate: 8_000, clients: 500 },
  xl: { rate: 15_000, clients: 1_000 },
} as const;

/** Keys the load writes over (each put overwrites one): few enough for one recursive delete. */
const KEY_SPACE = 500;
const VALUE = 'x'.repeat(256);

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

const perf: CommandModule<object, Args> = {
  command: 'perf',
  describe: 'a write load for --duration seconds; pass/fail for this cluster\'s disk and network',
  builder: (y) =>
    y
      .option('load', { choices: ['s', 'm', 'l', 'xl'] as const, default: 's', describe: 's 150 puts/s by 50, m 1,000/s by 200, l 8,000/s by 500, xl 15,000/s by 1,000' })
      .option('duration', { type: 'string', default: '30', describe: 'seconds of load' })
      .option('prefix', { type: 'string', default: '/.check-perf', describe: 'the scratch node the keys go under (deleted afterwards)' })
      .example('$0 check perf', '30 s at 150 puts/s: PASS or FAIL')
      .example('$0 check perf --load m -o json', 'a heavier load, the figures as JSON'),
  handler: action(async (ctx, args) => {
    const load = LOADS[args['load'] as keyof typeof LOADS];
    const seconds = integer(args['duration'], '--duration', 1);
    const prefix = path(args['prefix'], '--prefix');
    const connections = Array.from({ length: Math.ceil(load.clients / 100) }, () => ctx.open(ctx.endpoints));
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
    const errors = new Map<string, number>();
    const stop = new AbortController();
    setMaxListeners(load.clients + 10, stop.signal); // every requester may be pacing at once
    ctx.signal.addEventListener('abort', () => stop.abort(), { once: true });
    await connections[0]!.create(prefix, '', { parents: true }).catch((error: unknown) => {
      if (!(error instanceof WardenError && error.code === 'NODE_EXISTS')) throw error;
    });
    const started = performance.now();
    const endAt = started + seconds * 1_000;
    let next = 0;
    let done = 0;
    const progress = process.stderr.isTTY === true && ctx.out.format !== 'json' ? setInterval(() => {
      const elapsed = Math.min(seconds, (performance.now() - started) / 1_000);
      process.stderr.write(`\r  ${elapsed.toFixed(0)}/${seconds} s  ${done} puts  p99 ${(histogram.getValueAtPercentile(99) / 1_000).toFixed(1)} ms   `);
    }, 1_000) : null;
    const requester = async (client: WardenClient): Promise<void> => {
      while (!stop.signal.aborted) {
        const i = next++;
        const due = started + (i * 1_000) / load.rate;
        if (due >= endAt) return;
        await sleep(due - performance.now(), stop.signal);
        if (stop.signal.aborted) return;
        const sent = performance.now();
        try {
          await client.put(`${prefix}/k-${i % KEY_SPACE}`, VALUE, { timeoutMs: 5_000 });
          histogram.recordValue(Math.max(1, Math.round((performance.now() - sent) * 1_000)));
          done++;
        } catch (error) {
          const code = error instanceof WardenError ? error.code : 'ERROR';
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: load.clients }, (_, i) => requester(connections[i % connections.length]!)));
    if (progress !== null) {
      clearInterval(progress);
      process.stderr.write('\n');
    }
    const elapsedS = (performance.now() - started) / 1_000;
    await connections[0]!.delete(prefix, { recursive: true }).catch((error: unknown) => ctx.out.error(error));
    const throughput = done / elapsedS;
    const ms = (us: number): number => Math.round(us / 10) / 100;
    const failed = [...errors.values()].reduce((a, b) => a + b, 0);
    const checks = [
      { check: 'throughput', pass: throughput >= 0.9 * load.rate, value: `${throughput.toFixed(0)} puts/s`, limit: `≥ ${(0.9 * load.rate).toFixed(0)} puts/s (90% of ${load.rate})` },
      { check: 'slowest put', pass: ms(histogram.maxValue) <= 500, value: `${ms(histogram.maxValue)} ms`, limit: '≤ 500 ms' },
      { check: 'latency stddev', pass: ms(histogram.stdDeviation) <= 100, value: `${ms(histogram.stdDeviation)} ms`, limit: '≤ 100 ms' },
      { check: 'failed puts', pass: failed === 0, value: failed === 0 ? '0' : [...errors].map(([code, n]) => `${n} ${code}`).join(', '), limit: '0' },
    ];
    const pass = checks.every((c) => c.pass) && !ctx.signal.aborted;
    ctx.out.print({
      json: { pass, load: args['load'], targetRate: load.rate, clients: load.clients, seconds: Math.round(elapsedS * 100) / 100, puts: done, throughput: Math.round(throughput), latencyMs: { p50: ms(histogram.getValueAtPercentile(50)), p90: ms(histogram.getValueAtPercentile(90)), p99: ms(histogram.getValueAtPercentile(99)), max: ms(histogram.maxValue), stddev: ms(histogram.stdDeviation) }, errors: Object.fromEntries(errors), checks },
      simple: [...checks.map((c) => `${c.pass ? 'PASS' : 'FAIL'}: ${c.check} ${c.value} (${c.limit})`), pass ? 'PASS' : 'FAIL'],
      table: { columns: ['CHECK', 'RESULT', 'MEASURED', 'NEEDED'], rows: [...checks.map((c) => [c.check, c.pass ? 'PASS' : 'FAIL', c.value, c.limit]), ['overall', pass ? 'PASS' : 'FAIL', `${done} puts in ${elapsedS.toFixed(1)} s`, '']] },
    });
    return pass ? 0 : 1;
  }, { long: true }),
};

export const checkCommand: CommandModule<object, Args> = {
  command: 'check <command>',
  describe: 'check the cluster (perf: can its disk and network carry a write load?)',
  builder: (y) => y.command([perf]).demandCommand(1, 'say which: perf').example('$0 check perf', '30 s of puts: PASS or FAIL'),
  handler: () => undefined,
};
