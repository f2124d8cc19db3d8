/**
 * The load driver of `warden bench`: `clients` requesters (requests in flight), each a closed
 * loop that issues its next operation as soon as the last one answered, optionally held to a
 * global `rate` by a shared ticket clock; it stops after `total` operations or `duration`
 * seconds. Latencies go into an HDR histogram (hdr-histogram-js, microseconds, 3 significant
 * digits); completions into 1-second buckets; failures are counted by WardenError code.
 *
 * Pattern: Closed-loop load generator with a ticket-based rate limiter (the i-th op may start at
 * start + i/rate, so a slow second does not make a burst later beyond the schedule).
 *
 * Must never: compute percentiles by hand (the histogram does); count an operation twice or
 * issue more than `total`; wait without a bound after `duration` (a stuck op is cut by its own
 * call timeout).
 */

import * as hdr from 'hdr-histogram-js';
import { WardenError } from '../../api.js';

/**
 * One operation of a workload, by requester number and the operation's sequence number. It knows
 * nothing of Warden: any system's call fits, which is how bench/anchors.ts times etcd and
 * ZooKeeper through this same loop and histogram (errors are counted by their `name` then).
 */
export type Operation = (requester: number, seq: number) => Promise<void>;

export interface RunOptions {
  readonly clients: number;
  /** Stop after this many operations (when set), else after `durationS`. */
  readonly total?: number;
  readonly durationS?: number;
  /** Operations per second across all requesters; 0 = as fast as answers come. */
  readonly rate: number;
  /** Called about every 100 ms with the operations done so far (for a progress bar). */
  readonly onTick?: (done: number, errors: number) => void;
}

export interface RunResult {
  readonly histogram: hdr.Histogram;
  readonly ok: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly errorCount: number;
  readonly elapsedMs: number;
  /** Successful operations completed in each second since the start. */
  readonly perSecond: readonly number[];
}

export function newHistogram(): hdr.Histogram {
  // 1 µs .. 10 min, auto-resizing, 3 significant digits: 0.1 % precision at any latency.
  return hdr.build({ bitBucketSize: 32, lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
}

/** The code an error is counted under: the WardenError code, else the error's name. */
export function errorCode(error: unknown): string {
  if (error instanceof WardenError) return error.code;
  if (error instanceof Error) return error.name === 'Error' ? 'ERROR' : error.name;
  return 'ERROR';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function run(operation: Operation, options: RunOptions): Promise<RunResult> {
  const histogram = newHistogram();
  const errors: Record<string, number> = {};
  const perSecond: number[] = [];
  let ok = 0;
  let errorCount = 0;
  let issued = 0;
  const start = performance.now();
  const endAt = options.total === undefined ? start + (options.durationS ?? 10) * 1000 : Number.POSITIVE_INFINITY;
  const interval = options.rate > 0 ? 1000 / options.rate : 0;

  const ticker = options.onTick === undefined ? null : setInterval(() => options.onTick?.(ok + errorCount, errorCount), 100);
  const requester = async (id: number): Promise<void> => {
    for (;;) {
      if (options.total !== undefined && issued >= options.total) return;
      if (performance.now() >= endAt) return;
      const seq = issued++;
      if (interval > 0) {
        const due = start + seq * interval;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        if (performance.now() >= endAt) return;
      }
      const began = performance.now();
      try {
        await operation(id, seq);
        const ended = performance.now();
        histogram.recordValue(Math.max(1, Math.round((ended - began) * 1000)));
        ok += 1;
        const second = Math.floor((ended - start) / 1000);
        while (perSecond.length <= second) perSecond.push(0);
        perSecond[second]! += 1;
      } catch (error) {
        errorCount += 1;
        const code = errorCode(error);
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.clients }, (_, i) => requester(i)));
  } finally {
    if (ticker !== null) clearInterval(ticker);
  }
  options.onTick?.(ok + errorCount, errorCount);
  return { histogram, ok, errors, errorCount, elapsedMs: performance.now() - start, perSecond };
}
