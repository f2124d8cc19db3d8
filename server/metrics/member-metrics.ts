/**
 * A member's metrics in Prometheus' text format, served at GET /metrics on the client port:
 * requests by type and result and their latency, proposals, the Raft core's term, role, commit
 * and applied index and leader changes, WAL fdatasync time, WAL and store bytes, snapshots sent
 * and installed (time and bytes), connections, watches, leases, client sessions, event-loop lag,
 * the round trip to each peer, and every named limit beside what uses it.
 *
 * Pattern: one prom-client Registry per member (members embedded in one process must not share
 * prom-client's global one); events are counted where they happen (observe* methods), levels are
 * read from the member when Prometheus scrapes (collect), so a scrape costs what reading them
 * costs and nothing when no one scrapes. Names follow Prometheus conventions: the `warden_`
 * prefix, base units (`_seconds`, `_bytes`), counters ending in `_total`.
 *
 * Must never: block the event loop on a scrape (every source read is in memory), or let a label
 * take values a client chooses (request types are the protocol's fixed set, results its error
 * codes, peers the configuration's members).
 */

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LIMIT_SPECS, type Limits } from '../limits.js';
import type { RuntimeCounters } from '../node/runtime-ports.js';
import type { RaftStatus } from '../raft/types.js';

/** What the metrics read from the member at a scrape. */
export interface MetricsSource {
  raft(): RaftStatus;
  appliedIndex(): number;
  revision(): number;
  counters(): RuntimeCounters;
  snapshots(): { readonly sent: number; readonly installed: number };
  /** Bytes on disk, or null when they cannot be read. */
  walBytes(): number | null;
  storeBytes(): number | null;
  connections(): number;
  watches(): number;
  leases(): number;
  sessions(): number;
  /** The last measured round trip to each peer, in seconds. */
  peerRoundTrips(): ReadonlyMap<string, number>;
  /** The cluster's active alarms. */
  alarms(): readonly { readonly member: string; readonly kind: string }[];
  /** The space quota and the store's bytes as last measured (null: not yet). */
  quota(): { readonly quotaBytes: number; readonly usedBytes: number | null };
  readonly limits: Limits;
}

/** Latency buckets, in seconds: 100 µs to 10 s. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Snapshot streams take seconds to minutes. */
const SNAPSHOT_BUCKETS = [0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** A counter that follows a total the member keeps: each scrape adds what it grew by since the last. */
function followedCounter(registry: Registry, name: string, help: string, total: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = total();
      if (now > seen) this.inc(now - seen);
      seen = now;
    },
  });
}

function gauge(registry: Registry, name: string, help: string, read: () => number | null): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      if (value !== null) this.set(value);
    },
  });
}

export class MemberMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'type' | 'result'>;
  private readonly requestSeconds: Histogram<'type'>;
  private readonly walSyncSeconds: Histogram;
  private readonly snapshotSeconds: Histogram<'direction'>;
  private readonly snapshotBytes: Counter<'direction'>;
  private readonly eventLoopLagSeconds: Histogram;

  constructor(source: MetricsSource) {
    const { registry } = this;
    this.requests = new Counter({ name: 'warden_requests_total', help: 'Client requests answered, by type and result (ok, or the error code).', labelNames: ['type', 'result'], registers: [registry] });
    this.requestSeconds = new Histogram({ name: 'warden_request_duration_seconds', help: 'Time from a request read to its answer sent, by type.', labelNames: ['type'], buckets: LATENCY_BUCKETS, registers: [registry] });
    this.walSyncSeconds = new Histogram({ name: 'warden_wal_fsync_duration_seconds', help: 'Duration of each WAL fdatasync (one per group-commit batch).', buckets: LATENCY_BUCKETS, registers: [registry] });
    this.snapshotSeconds = new Histogram({ name: 'warden_snapshot_duration_seconds', help: 'Duration of each snapshot stream, sent to a follower or received and installed.', labelNames: ['direction'], buckets: SNAPSHOT_BUCKETS, registers: [registry] });
    this.snapshotBytes = new Counter({ name: 'warden_snapshot_bytes_total', help: 'Bytes of snapshot streams sent to followers or received from the leader.', labelNames: ['direction'], registers: [registry] });
    this.eventLoopLagSeconds = new Histogram({ name: 'warden_event_loop_lag_seconds', help: 'How late the event loop ran a 20 ms timer: what every request waited on top of its work.', buckets: LATENCY_BUCKETS, registers: [registry] });

    followedCounter(registry, 'warden_proposals_committed_total', 'Proposals this member took as leader that were applied.', () => source.counters().proposalsCommitted);
    followedCounter(registry, 'warden_proposals_failed_total', 'Proposals this member took as leader whose outcome became a failure.', () => source.counters().proposalsFailed);
    followedCounter(registry, 'warden_leader_changes_total', 'Times the leader this member knows changed.', () => source.counters().leaderChanges);
    followedCounter(registry, 'warden_snapshots_sent_total', 'Snapshot streams sent to followers that went through.', () => source.snapshots().sent);
    followedCounter(registry, 'warden_snapshots_installed_total', 'Snapshots received from a leader and installed.', () => source.snapshots().installed);

    gauge(registry, 'warden_raft_term', 'The Raft term this member is in.', () => source.raft().term);
    gauge(registry, 'warden_raft_commit_index', 'The highest log index this member knows committed.', () => source.raft().commitIndex);
    gauge(registry, 'warden_raft_applied_index', 'The highest log index applied to this member\'s state.', () => source.appliedIndex());
    gauge(registry, 'warden_raft_last_index', 'The last index in this member\'s log.', () => source.raft().lastIndex);
    gauge(registry, 'warden_revision', 'The cluster revision this member\'s state is at.', () => source.revision());
    gauge(registry, 'warden_has_leader', '1 if this member knows a leader, else 0.', () => (source.raft().leaderId === null ? 0 : 1));
    gauge(registry, 'warden_wal_bytes', 'Bytes of the write-ahead log on disk.', () => source.walBytes());
    gauge(registry, 'warden_store_bytes', 'Bytes of the state store (RocksDB) on disk.', () => source.storeBytes());
    gauge(registry, 'warden_connections', 'Client connections open on this member.', () => source.connections());
    gauge(registry, 'warden_watches', 'Watches open on this member.', () => source.watches());
    gauge(registry, 'warden_leases', 'Leases in the cluster, as this member\'s state holds them.', () => source.leases());
    gauge(registry, 'warden_client_sessions', 'Client sessions in the cluster, as this member\'s state holds them.', () => source.sessions());
    new Gauge({
      name: 'warden_raft_role',
      help: 'This member\'s Raft role: 1 for the role it has, 0 for the others.',
      labelNames: ['role'],
      registers: [registry],
      collect() {
        const role = source.raft().role;
        for (const r of ['leader', 'follower', 'candidate', 'precandidate']) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'warden_peer_round_trip_seconds',
      help: 'The last measured round trip to each peer (a WebSocket ping).',
      labelNames: ['peer'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [peer, seconds] of source.peerRoundTrips()) this.set({ peer }, seconds);
      },
    });
    new Gauge({
      name: 'warden_alarm_active',
      help: 'Active alarms in the cluster, by kind and the member that raised them (NO_SPACE: writes that add data are refused).',
      labelNames: ['kind', 'member'],
      registers: [registry],
      collect() {
        this.reset();
        for (const alarm of source.alarms()) this.set({ kind: alarm.kind, member: alarm.member }, 1);
      },
    });
    gauge(registry, 'warden_quota_bytes', 'The space quota (--quota-bytes): past it, NO_SPACE.', () => source.quota().quotaBytes);
    gauge(registry, 'warden_quota_used_bytes', 'The state store\'s bytes on disk, as the space quota last measured them.', () => source.quota().usedBytes);
    // The limits, beside the levels above that they bound (each named as its flag names it).
    const limit = new Gauge({ name: 'warden_limit', help: 'Each named limit (--max-* flags), by limit name and unit.', labelNames: ['limit', 'unit'], registers: [registry] });
    for (const spec of LIMIT_SPECS) {
      const value = source.limits[spec.key];
      if (spec.unit === 'ms') limit.set({ limit: spec.flag, unit: 'seconds' }, value / 1_000);
      else limit.set({ limit: spec.flag, unit: spec.unit }, value);
    }
  }

  /** A request answered: `result` is 'ok' or its error code. */
  observeRequest(type: string, result: string, seconds: number): void {
    this.requests.inc({ type, result });
    this.requestSeconds.observe({ type }, seconds);
  }

  observeWalSync(seconds: number): void {
    this.walSyncSeconds.observe(seconds);
  }

  observeSnapshot(direction: 'sent' | 'received', seconds: number, bytes: number): void {
    this.snapshotSeconds.observe({ direction }, seconds);
    this.snapshotBytes.inc({ direction }, bytes);
  }

  observeEventLoopLag(seconds: number): void {
    this.eventLoopLagSeconds.observe(seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
