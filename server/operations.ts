/**
 * What watches a running member for its operators: its Prometheus metrics, the space quota and
 * its NO_SPACE alarm, compaction of the history by age, the round trip to each peer, the event
 * loop's lag, and the readiness checks /readyz answers. startServer starts it once the runtime
 * exists and stops it first at close.
 *
 * Pattern: a facade over the member's watchdogs and samplers, each on its own unref'd timer.
 *
 * Must never: act on a member after stop() (every timer is cleared there), or read anything at
 * a scrape that is not already in memory.
 */

import { join } from 'node:path';
import type { Limits } from './limits.js';
import type { MemberRuntime, RuntimeLogger } from './node/runtime.js';
import type { RocksStoreHome } from './node/store-home.js';
import type { PeerTransport } from './transport/peer-transport.js';
import type { WatchHub } from './watch/hub.js';
import { MemberMetrics } from './metrics/member-metrics.js';
import { sampleEventLoopLag } from './metrics/event-loop-lag.js';
import { PeerRoundTrips } from './transport/round-trips.js';
import { SpaceQuota, storeBytes } from './space-quota.js';
import { AutoCompaction } from './auto-compaction.js';

/** The space quota's default, and the share of it the store must be back under for its alarm to clear. */
export const QUOTA_BYTES_DEFAULT = 2 * 1024 * 1024 * 1024;
const QUOTA_LOW_WATER = 0.8;
/** A member applied further behind its commit index than this is neither healthy nor ready. */
export const APPLIED_BEHIND_MAX = 1_000;

export interface OperationsDeps {
  readonly name: string;
  readonly dataDir: string;
  readonly runtime: MemberRuntime;
  readonly home: RocksStoreHome;
  readonly hub: WatchHub;
  readonly transport: PeerTransport;
  readonly limits: Limits;
  readonly logger: RuntimeLogger;
  /** The WAL's and the store's bytes on disk, as /status reads them. */
  readonly diskSizes: () => { readonly dbSize: number | null; readonly walSize: number | null };
  readonly connections: () => number;
  readonly quotaBytes?: number;
  readonly autoCompactionRetentionMs?: number;
}

export interface Operations {
  readonly metrics: MemberMetrics;
  /** /readyz: the checks that failed (none: ready); `exclude` leaves some out (`alarm`). */
  readiness(exclude: ReadonlySet<string>): { readonly ready: boolean; readonly failed: readonly string[] };
  stop(): void;
}

export function startOperations(deps: OperationsDeps): Operations {
  const { name, runtime, logger } = deps;
  const quotaBytes = deps.quotaBytes ?? QUOTA_BYTES_DEFAULT;
  const roundTrips = new PeerRoundTrips(() => deps.transport.openSockets());
  const quota = new SpaceQuota({
    member: name,
    quotaBytes,
    lowWaterBytes: Math.floor(quotaBytes * QUOTA_LOW_WATER),
    usedBytes: () => storeBytes(join(deps.dataDir, 'state')),
    alarmed: () => runtime.machine.alarms.list().some((a) => a.member === name && a.kind === 'NO_SPACE'),
    propose: (command) => runtime.propose(command),
    reclaim: () => deps.home.reclaimSpace(),
    logger,
  });
  const metrics = new MemberMetrics({
    raft: () => runtime.status,
    appliedIndex: () => runtime.machine.appliedIndex,
    revision: () => runtime.machine.revision,
    counters: () => runtime.counters,
    snapshots: () => runtime.snapshots,
    walBytes: () => deps.diskSizes().walSize,
    storeBytes: () => deps.diskSizes().dbSize,
    connections: deps.connections,
    watches: () => deps.hub.size,
    leases: () => runtime.machine.leases.size,
    sessions: () => runtime.machine.sessions.size,
    peerRoundTrips: () => roundTrips.last,
    alarms: () => runtime.machine.alarms.list(),
    quota: () => ({ quotaBytes, usedBytes: quota.used }),
    limits: deps.limits,
  });
  const compaction =
    (deps.autoCompactionRetentionMs ?? 0) > 0
      ? new AutoCompaction({
          retentionMs: deps.autoCompactionRetentionMs!,
          monotonicMs: () => performance.now(),
          leading: () => runtime.status.role === 'leader',
          revision: () => runtime.machine.revision,
          compactRevision: () => runtime.machine.namespace.compactRevision,
          propose: (command) => runtime.propose(command),
          logger,
        })
      : null;
  roundTrips.start();
  quota.start();
  compaction?.start();
  const lagSampler = sampleEventLoopLag((seconds) => metrics.observeEventLoopLag(seconds));
  return {
    metrics,
    readiness: (exclude) => {
      const failed: string[] = [];
      if (!runtime.running) failed.push('stopped');
      if (runtime.status.leaderId === null) failed.push('no leader known');
      if (runtime.status.commitIndex - runtime.machine.appliedIndex >= APPLIED_BEHIND_MAX) failed.push(`applied more than ${APPLIED_BEHIND_MAX} entries behind the commit index`);
      if (!exclude.has('alarm')) for (const alarm of runtime.machine.alarms.list()) failed.push(`alarm ${alarm.kind} (${alarm.member})`);
      return { ready: failed.length === 0, failed };
    },
    stop: () => {
      compaction?.stop();
      quota.stop();
      roundTrips.stop();
      lagSampler.stop();
    },
  };
}
