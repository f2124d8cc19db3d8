/**
 * Snapshots this member sends (Low-Water Mark, the sending side): to a follower the leader's log
 * no longer reaches, streamed beside the update loop over the peer link; and to a client taking
 * a backup (`warden snapshot save`, through server/api/snapshot-streams.ts). Either way the store
 * as a scan sees it, at its durable applied index, with the Raft base that index makes: its term
 * and its configuration (from the log, which keeps both from the store's durable index on).
 *
 * Must never: send a second stream to a follower while one is going; leave a scan open when the
 * base cannot be made (it is closed before the error goes out).
 */

import type { ConfState, NodeId, SnapshotMessage, SnapshotMeta } from '../raft/types.js';
import type { PairObserver } from '../storage/snapshot.js';
import type { PeerLink, RuntimeLogger, StoreHome } from './runtime.js';
import { RequestError } from './waiting-list.js';

export interface SnapshotSenderDeps {
  readonly home: Pick<StoreHome, 'snapshot' | 'store'>;
  readonly link: Pick<PeerLink, 'sendSnapshot'>;
  readonly logger: RuntimeLogger;
  /** The term of a log index, if the log still holds it. */
  termAt(index: number): number | undefined;
  /**
   * The configuration in force at a log index the log still holds. A snapshot carries the one at
   * the index its store was scanned at — not the core's (older) snapshot index: the config
   * entries between would be lost to the member that installs it (simulator seed 9).
   */
  confAt(index: number): ConfState;
  /** A stream to a follower failed: the core should be told (in the update loop), and it tries again sooner. */
  failed(to: NodeId): void;
  /** Resolves once this member has applied the cluster's commit index as of now (a ReadIndex round). */
  caughtUp(): Promise<void>;
}

export class SnapshotSender {
  /** Streams to followers that went through, since start (for /status). */
  sent = 0;
  private readonly sending = new Set<NodeId>();

  constructor(private readonly deps: SnapshotSenderDeps) {}

  /** The leader's snapshot for `message.to`, streamed beside the update loop (one at a time per follower). */
  toFollower(message: SnapshotMessage): void {
    const to = message.to;
    if (this.sending.has(to)) return;
    this.sending.add(to);
    void (async () => {
      try {
        const { meta, chunks } = await this.open({}, (index) => new Error(`no term known for the store's applied index ${index}`));
        this.deps.logger.info({ event: 'snapshot_sending', to, index: meta.index }, `streaming a snapshot at ${meta.index} to ${to}`);
        await this.deps.link.sendSnapshot({ ...message, snapshot: { meta, data: null } }, chunks);
        this.sent += 1;
      } catch (error) {
        this.deps.logger.warn({ event: 'snapshot_send_failed', to, error: (error as Error).message }, `a snapshot to ${to} did not go through`);
        this.deps.failed(to);
      } finally {
        this.sending.delete(to);
      }
    })();
  }

  /**
   * A consistent snapshot of this member's store for a client's backup. Linearizable: every
   * write acknowledged before it was asked for is in it — this member first applies up to the
   * cluster's commit index, then writes its store through all it applied (the scan sees the
   * store, which trails the applied state by the batches not yet written). Serializable: what
   * this member has (one cut off from a quorum). The chunks must be consumed or returned: the
   * scan holds a RocksDB snapshot open until then.
   */
  async forClient(options: { readonly chunkBytes: number; readonly observe?: PairObserver; readonly linearizable: boolean }): Promise<{ readonly meta: SnapshotMeta; readonly chunks: AsyncIterable<Uint8Array> }> {
    if (options.linearizable) await this.deps.caughtUp();
    await this.deps.home.store.persist({ sync: false });
    // The log's low-water mark may pass the store's index while the scan opens: a new scan sees the newer store.
    return this.open(options, (index) => new RequestError('UNAVAILABLE', `the log no longer holds the term of index ${index}; ask again`, null));
  }

  /** A scan of the store and the base it makes; closed again if no term is known for its index. */
  private async open(options: { readonly chunkBytes?: number; readonly observe?: PairObserver }, noTerm: (index: number) => Error): Promise<{ readonly meta: SnapshotMeta; readonly chunks: AsyncIterable<Uint8Array> }> {
    const snapshot = await this.deps.home.snapshot(options);
    const term = this.deps.termAt(snapshot.appliedIndex);
    if (term === undefined) {
      await snapshot.close();
      throw noTerm(snapshot.appliedIndex);
    }
    const meta: SnapshotMeta = { index: snapshot.appliedIndex, term, conf: this.deps.confAt(snapshot.appliedIndex) };
    return { meta, chunks: snapshot.chunks(meta) };
  }
}
