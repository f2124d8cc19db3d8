/**
 * The space quota (--quota-bytes): each member watches the bytes its state store holds on disk.
 * Past the quota it raises a NO_SPACE alarm through the log (every member then refuses the writes
 * that add data, server/state/alarms.ts); while its alarm is up it asks RocksDB, now and then, to
 * give back what deletes and history compaction freed (RocksDB compacts in its own threads: no
 * stop-the-world defragmentation); back under the low-water mark it clears its alarm itself. No
 * operator has to disarm anything (etcd #9222, #11309).
 *
 * Pattern: a watchdog on a timer; the alarm is replicated state, so members agree on it.
 *
 * Must never: block the event loop measuring (the directory is read asynchronously), propose
 * again while a proposal of its own is in flight, or raise and clear on the same measurement
 * (the low-water mark sits below the quota: no flapping at the line).
 */

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AlarmCommand } from './state/alarms.js';

export interface SpaceQuotaOptions {
  readonly member: string;
  readonly quotaBytes: number;
  /** The alarm clears once usage is under this (default 80% of the quota). */
  readonly lowWaterBytes: number;
  /** The store's bytes on disk now (null: unknown). */
  readonly usedBytes: () => Promise<number | null>;
  /** Whether this member's NO_SPACE alarm is active in the replicated state. */
  readonly alarmed: () => boolean;
  readonly propose: (command: AlarmCommand) => Promise<unknown>;
  /** Ask the store to give back freed space. */
  readonly reclaim: () => Promise<void>;
  readonly intervalMs?: number;
  /** At most one reclaim this often while the alarm is up. */
  readonly reclaimEveryMs?: number;
  readonly logger: { info(fields: Record<string, unknown>, message: string): void; warn(fields: Record<string, unknown>, message: string): void };
}

export class SpaceQuota {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private lastReclaimAt = -Infinity;
  /** The last usage measured (for /status and the metrics). */
  used: number | null = null;

  constructor(private readonly options: SpaceQuotaOptions) {
    if (!(options.lowWaterBytes < options.quotaBytes)) throw new Error('space quota: the low-water mark must be under the quota');
  }

  start(): void {
    this.timer ??= setInterval(() => void this.check(), this.options.intervalMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One measurement, and what it calls for. Answers what it did (for tests and logs). */
  async check(): Promise<'raised' | 'cleared' | 'reclaimed' | 'nothing'> {
    if (this.busy) return 'nothing';
    this.busy = true;
    try {
      const { member, quotaBytes, lowWaterBytes, logger } = this.options;
      const used = await this.options.usedBytes();
      this.used = used;
      if (used === null) return 'nothing';
      const alarmed = this.options.alarmed();
      if (!alarmed && used >= quotaBytes) {
        logger.warn({ event: 'space_quota_exceeded', usedBytes: used, quotaBytes }, `the store holds ${used} bytes, past --quota-bytes ${quotaBytes}: raising NO_SPACE (writes that add data are refused until it clears)`);
        await this.options.propose({ op: 'alarm', action: 'raise', member, kind: 'NO_SPACE', usedBytes: used, quotaBytes });
        return 'raised';
      }
      const clear = async (bytes: number): Promise<'cleared'> => {
        logger.info({ event: 'space_quota_cleared', usedBytes: bytes, lowWaterBytes }, `the store holds ${bytes} bytes, under the low-water mark ${lowWaterBytes}: clearing NO_SPACE`);
        await this.options.propose({ op: 'alarm', action: 'clear', member, kind: 'NO_SPACE' });
        return 'cleared';
      };
      if (alarmed && used < lowWaterBytes) return await clear(used);
      const now = performance.now();
      if (alarmed && now - this.lastReclaimAt >= (this.options.reclaimEveryMs ?? 5_000)) {
        this.lastReclaimAt = now;
        await this.options.reclaim();
        // Measured again at once: the space given back clears the alarm now, not a second later.
        const after = await this.options.usedBytes();
        this.used = after;
        if (after !== null && after < lowWaterBytes) return await clear(after);
        return 'reclaimed';
      }
      return 'nothing';
    } catch (error) {
      this.options.logger.warn({ event: 'space_quota_failed', error: (error as Error).message }, `the space quota could not act: ${(error as Error).message}; it tries again`);
      return 'nothing';
    } finally {
      this.busy = false;
    }
  }
}

/**
 * The bytes of a RocksDB directory's data: its tables, its own write-ahead log and manifest —
 * not its info logs (LOG, LOG.old.*), which are no data.
 */
export async function storeBytes(directory: string): Promise<number | null> {
  try {
    let total = 0;
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      if (!entry.isFile() || entry.name.startsWith('LOG')) continue;
      // RocksDB deletes files as it compacts: one gone since the listing holds nothing.
      total += await stat(join(directory, entry.name)).then((s) => s.size, () => 0);
    }
    return total;
  } catch {
    return null;
  }
}
