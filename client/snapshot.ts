/**
 * A consistent snapshot of one member's store, downloaded for a backup (`warden snapshot save`):
 * the member opens a scan of its store at one applied index and the client pulls its chunks in
 * order over the one connection that holds the scan, a few ahead (Request Pipeline), so the
 * member's reading and the network overlap. The chunks are opaque here — CRC-checked records
 * that `warden snapshot restore` turns back into a member's data.
 *
 * Must never: hand out a chunk out of order or from another connection's stream (a lost
 * connection fails the download: UNAVAILABLE, start again); pull past the last chunk.
 */

import { WardenError } from '../shared/errors.js';
import type { SnapshotSummary } from '../shared/snapshot-file.js';
import type { CallOptions, Requests } from './requests.js';
import { decodeBytes } from './values.js';

export type { SnapshotSummary } from '../shared/snapshot-file.js';

/** Where the snapshot comes from and what a restore makes of it. */
export interface SnapshotInfo {
  /** The member that streamed it. */
  readonly member: string;
  /** The Raft index the store had applied: the restored cluster's log begins after it. */
  readonly appliedIndex: number;
  /** The term of that entry. */
  readonly term: number;
  /** The cluster's voters when it was taken. */
  readonly voters: readonly string[];
  /** The store's size on the member's disk, for a progress bar (the snapshot is about as big). */
  readonly sizeEstimate: number;
}


export interface SnapshotDownload {
  readonly info: SnapshotInfo;
  /** The chunks in order, once; ends after the last. Left unfinished, the member ends its scan when the client closes or after its --max-snapshot-idle-ms. */
  chunks(): AsyncIterable<Uint8Array>;
  /** Set once the last chunk has come. */
  readonly summary: SnapshotSummary | null;
}

/** Pulls kept in flight ahead of the one being handed out. */
const PULLS_AHEAD = 2;
/** A member never streams more chunks than this (4 TiB at 1 MiB each): a bound on the loop. */
const CHUNKS_MAX = 4 * 1024 * 1024;

export interface SnapshotOptions extends CallOptions {
  /**
   * `linearizable` (the default): the snapshot holds every write acknowledged before it was
   * asked for (the member catches up with the cluster first, so a quorum is needed).
   * `serializable`: what the member has applied — from a member cut off from a quorum, say.
   */
  readonly consistency?: 'linearizable' | 'serializable';
}

export async function downloadSnapshot(requests: Requests, options: SnapshotOptions = {}): Promise<SnapshotDownload> {
  const { consistency, ...call } = options;
  // Opening is retried freely (it changes nothing); the stream then lives on that connection.
  const first = await requests.read({ type: 'snapshot', ...(consistency === 'serializable' ? { consistency } : {}) }, call);
  const generation = first['generation'] as number;
  const cursor = first['cursor'] as number;
  const info = first['snapshot'] as SnapshotInfo;
  let summary: SnapshotSummary | null = null;
  let used = false;
  const chunkOf = (answer: Record<string, unknown>, seq: number): { readonly bytes: Uint8Array; readonly last: boolean } => {
    if (answer['seq'] !== seq) throw new WardenError('UNAVAILABLE', `the member answered chunk ${String(answer['seq'])} where ${seq} was expected; start again`);
    if (answer['last'] === true) summary = answer['summary'] as SnapshotSummary;
    return { bytes: decodeBytes(answer['chunk'] as string), last: answer['last'] === true };
  };
  return {
    info,
    get summary() {
      return summary;
    },
    async *chunks() {
      if (used) throw new Error('a snapshot download can be read once');
      used = true;
      let chunk = chunkOf(first, 0);
      yield chunk.bytes;
      if (chunk.last) return;
      const ahead: Promise<Record<string, unknown>>[] = [];
      let asked = 1;
      const ask = (): void => {
        const pull = requests.once({ type: 'snapshot', cursor, seq: asked++ }, generation, call);
        pull.catch(() => undefined); // awaited in turn below; a pull not reached must not go unhandled
        ahead.push(pull);
      };
      for (let seq = 1; seq < CHUNKS_MAX; seq++) {
        while (ahead.length < PULLS_AHEAD) ask();
        chunk = chunkOf(await ahead.shift()!, seq);
        yield chunk.bytes;
        if (chunk.last) return;
      }
      throw new WardenError('UNAVAILABLE', `the snapshot passed ${CHUNKS_MAX} chunks without a last one`);
    },
  };
}
