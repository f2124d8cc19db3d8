/**
 * Compaction of the history by age (--auto-compaction-retention): the leader keeps the revisions
 * of the last `retentionMs` and compacts what is older, as etcd's periodic compaction does. Every
 * member samples its revision on a timer (a new leader has the samples already); the leader
 * proposes `autoCompact` to the newest sampled revision that is at least `retentionMs` old. The
 * history is also compacted by revision count, in the state machine itself (historyRevisions).
 *
 * Pattern: a sampler on a timer; the compaction itself goes through the log like any write.
 *
 * Must never: compact past a revision younger than the retention; keep more samples than reach
 * past it (at most 290, for a day); propose while its last proposal is in flight.
 */

import type { AutoCompactCommand } from './state/state-machine.js';


export interface AutoCompactionOptions {
  readonly retentionMs: number;
  readonly monotonicMs: () => number;
  readonly leading: () => boolean;
  readonly revision: () => number;
  readonly compactRevision: () => number;
  readonly propose: (command: AutoCompactCommand) => Promise<unknown>;
  readonly logger: { info(fields: Record<string, unknown>, message: string): void; warn(fields: Record<string, unknown>, message: string): void };
}

/** How often to sample for `retentionMs`: a tenth of it, between 1 s and 5 min. */
export function sampleEveryMs(retentionMs: number): number {
  return Math.min(300_000, Math.max(1_000, Math.floor(retentionMs / 10)));
}

export class AutoCompaction {
  private readonly samples: { readonly atMs: number; readonly revision: number }[] = [];
  /** Enough samples to reach past the retention (one per interval), and two spare. */
  private readonly samplesMax: number;
  private proposing = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: AutoCompactionOptions) {
    this.samplesMax = Math.ceil(options.retentionMs / sampleEveryMs(options.retentionMs)) + 2;
  }

  start(): void {
    this.tick();
    this.timer ??= setInterval(() => this.tick(), sampleEveryMs(this.options.retentionMs));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Sample the revision now; leading, compact to the newest sample past the retention. Answers the revision proposed, if any. */
  tick(): number | null {
    const { retentionMs, monotonicMs, leading, revision, compactRevision } = this.options;
    const now = monotonicMs();
    this.samples.push({ atMs: now, revision: revision() });
    while (this.samples.length > this.samplesMax) this.samples.shift();
    if (!leading() || this.proposing) return null;
    let target: number | null = null;
    for (const sample of this.samples) if (now - sample.atMs >= retentionMs) target = sample.revision;
    if (target === null || target <= compactRevision()) return null;
    this.proposing = true;
    const revisionToKeep = target;
    void this.options
      .propose({ op: 'autoCompact', revision: revisionToKeep })
      .then(
        () => this.options.logger.info({ event: 'auto_compacted', revision: revisionToKeep, retentionMs }, `compacted the history below revision ${revisionToKeep} (older than ${retentionMs} ms)`),
        (error: Error) => this.options.logger.warn({ event: 'auto_compaction_failed', revision: revisionToKeep, error: error.message }, `could not compact the history: ${error.message}; trying again later`),
      )
      .finally(() => void (this.proposing = false));
    return revisionToKeep;
  }
}

/** A retention as given to the flag: "1h", "30m", "90s", "500ms", or a number of hours (etcd's form); 0 turns it off. */
export function parseRetention(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new Error(`--auto-compaction-retention: "${text}" is not a duration (1h, 30m, 90s, 500ms, or hours as a number)`);
  const value = Number(match[1]);
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  return Math.round(value * units[match[2] ?? 'h']!);
}
