/**
 * Client snapshots (`warden snapshot save`): a consistent copy of this member's store, pulled
 * by the client a chunk at a time over its connection. The first `snapshot` request opens a
 * RocksDB scan (one point in time: by default after the member applied and wrote everything the
 * cluster committed before the request; with `consistency: serializable`, what this member
 * has, for a member cut off from a quorum) and answers chunk 0
 * with the base a restore needs; each later request names the stream's cursor and the next
 * chunk's seq. Pulling, not pushing, is the flow control: a client that stops asking holds one
 * chunk of the member's memory, and past --max-snapshot-idle-ms its stream is ended. The last
 * answer carries what the stream held (revision, nodes, leases, sessions), counted as it went.
 *
 * Chunks are the same CRC-checked chunks a leader streams to a follower, sent as base64; a
 * chunk passes the chunk size by at most one record (so an answer may pass --max-answer-bytes
 * by up to one node value).
 *
 * Must never: leave a scan open after its connection closed, its stream ended or failed, or its
 * idle time passed (each pins RocksDB's files); hold more than --max-snapshot-streams open, or
 * two for one connection; answer a chunk out of order or twice.
 */

import { Buffer } from 'node:buffer';
import type { MemberRuntime } from '../node/runtime.js';
import { RequestError } from '../node/waiting-list.js';
import { chunkPlace } from '../storage/snapshot.js';
import { StoreTally } from '../state/store-format.js';
import { limitField, type Limits } from '../limits.js';
import type { ClientConnection } from './handlers.js';
import { errorFrame } from './wire.js';

/** Bytes of store records per chunk: an answer of about 1.4 MiB in base64, well under the default answer bound. */
export const CLIENT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

type Answer = Record<string, unknown>;

interface OpenStream {
  readonly cursor: number;
  readonly owner: ClientConnection;
  readonly chunks: AsyncIterator<Uint8Array>;
  readonly tally: StoreTally;
  nextSeq: number;
  /** The pull being served: pulls of one stream are served one after another. */
  tail: Promise<unknown>;
  idleTimer: NodeJS.Timeout | null;
}

export interface SnapshotStreamsDeps {
  readonly runtime: Pick<MemberRuntime, 'snapshotForClient'>;
  readonly limits: Pick<Limits, 'snapshotStreamsMax' | 'snapshotIdleMs'>;
  /** This member's name and its store's size on disk (the progress bar's estimate). */
  readonly member: () => { readonly name: string; readonly dbSize: number };
  readonly chunkBytes?: number;
  readonly logger: { info(fields: Record<string, unknown>, message: string): void; warn(fields: Record<string, unknown>, message: string): void };
}

export class SnapshotStreams {
  private readonly open = new Map<number, OpenStream>();
  private nextCursor = 1;
  /** Opens in progress count against the limit too (a scan is being set up for each). */
  private opening = 0;

  constructor(private readonly deps: SnapshotStreamsDeps) {}

  /** Streams open now (for /status and tests). */
  get size(): number {
    return this.open.size;
  }

  /** Serve one `snapshot` request from `owner` (the connection). */
  async pull(frame: Record<string, unknown>, owner: ClientConnection): Promise<Answer> {
    const cursor = frame['cursor'];
    if (cursor === undefined) return this.begin(owner, frame['consistency'] !== 'serializable');
    const stream = this.open.get(cursor as number);
    if (stream === undefined || stream.owner !== owner) {
      return errorFrame('INVALID_ARGUMENT', `no snapshot ${String(cursor)} is open on this connection (it ended, waited past --max-snapshot-idle-ms, or was opened on another connection): save again`);
    }
    const seq = frame['seq'];
    if (seq !== stream.nextSeq) return errorFrame('INVALID_ARGUMENT', `snapshot ${stream.cursor} is at chunk ${stream.nextSeq}; chunk ${String(seq)} was asked for`);
    stream.nextSeq += 1;
    const served = stream.tail.then(() => this.serve(stream));
    stream.tail = served.catch(() => undefined);
    return served;
  }

  /** The connection closed: its streams end. */
  closed(owner: ClientConnection): void {
    for (const stream of [...this.open.values()]) if (stream.owner === owner) this.end(stream);
  }

  /** End every stream (the member stops). */
  closeAll(): void {
    for (const stream of [...this.open.values()]) this.end(stream);
  }

  private async begin(owner: ClientConnection, linearizable: boolean): Promise<Answer> {
    const { limits } = this.deps;
    // One at a time per connection: a client never needs two, and one client must not take every slot.
    for (const stream of this.open.values()) {
      if (stream.owner === owner) return errorFrame('INVALID_ARGUMENT', `snapshot ${stream.cursor} is already open on this connection: read it to its end (or close the connection) first`);
    }
    if (this.open.size + this.opening >= limits.snapshotStreamsMax) {
      return errorFrame('RESOURCE_EXHAUSTED', `${this.open.size + this.opening} snapshots are streaming from this member, its most: retry when one ends`, { limit: limitField(limits as Limits, 'snapshotStreamsMax') });
    }
    this.opening += 1;
    const tally = new StoreTally();
    let opened: Awaited<ReturnType<MemberRuntime['snapshotForClient']>>;
    try {
      opened = await this.deps.runtime.snapshotForClient({ chunkBytes: this.deps.chunkBytes ?? CLIENT_SNAPSHOT_CHUNK_BYTES, observe: (key, value) => tally.add(key, value), linearizable });
    } catch (error) {
      return refusal(error);
    } finally {
      this.opening -= 1;
    }
    const stream: OpenStream = { cursor: this.nextCursor++, owner, chunks: opened.chunks[Symbol.asyncIterator](), tally, nextSeq: 1, tail: Promise.resolve(), idleTimer: null };
    this.open.set(stream.cursor, stream);
    if (!owner.alive()) {
      // The connection closed while the scan opened (its `closed` ran before this stream existed).
      const first = await this.serve(stream); // starts the generator, so that ending it ends the scan
      this.end(stream);
      return first['ok'] === true ? errorFrame('UNAVAILABLE', 'the connection closed') : first;
    }
    const { name, dbSize } = this.deps.member();
    this.deps.logger.info({ event: 'client_snapshot_opened', cursor: stream.cursor, index: opened.meta.index }, `a client snapshot at index ${opened.meta.index} began`);
    // Chunk 0 now: it starts the scan's generator, whose `finally` is what ends the scan.
    const first = await this.serve(stream);
    if (first['ok'] !== true) return first;
    return { ...first, snapshot: { member: name, appliedIndex: opened.meta.index, term: opened.meta.term, voters: opened.meta.conf.voters, sizeEstimate: dbSize } };
  }

  private async serve(stream: OpenStream): Promise<Answer> {
    if (stream.idleTimer !== null) clearTimeout(stream.idleTimer);
    stream.idleTimer = null;
    if (this.open.get(stream.cursor) !== stream) return errorFrame('INVALID_ARGUMENT', `snapshot ${stream.cursor} has ended: save again`);
    let next: IteratorResult<Uint8Array>;
    try {
      next = await stream.chunks.next();
    } catch (error) {
      this.end(stream);
      // A leader's snapshot replaced this member's store (or it is stopping): the scan is gone.
      this.deps.logger.warn({ event: 'client_snapshot_failed', cursor: stream.cursor, error: (error as Error).message }, 'a client snapshot failed');
      return errorFrame('UNAVAILABLE', `the snapshot could not go on (${(error as Error).message}): save again`);
    }
    if (next.done === true) {
      this.end(stream);
      return errorFrame('INVALID_ARGUMENT', `snapshot ${stream.cursor} has no more chunks`);
    }
    const chunk = next.value;
    const { seq, last } = chunkPlace(chunk);
    const answer: Answer = { ok: true, cursor: stream.cursor, seq, last, chunk: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64') };
    if (last) {
      this.end(stream);
      try {
        answer['summary'] = stream.tally.summary();
      } catch (error) {
        return errorFrame('UNAVAILABLE', `the snapshot's records could not be counted (${(error as Error).message})`);
      }
      this.deps.logger.info({ event: 'client_snapshot_done', cursor: stream.cursor, chunks: seq + 1 }, 'a client snapshot was sent whole');
    } else if (this.open.get(stream.cursor) === stream) {
      stream.idleTimer = setTimeout(() => {
        this.deps.logger.warn({ event: 'client_snapshot_idle', cursor: stream.cursor }, `a client snapshot waited ${this.deps.limits.snapshotIdleMs} ms for its next pull and was ended`);
        this.end(stream);
      }, this.deps.limits.snapshotIdleMs);
      stream.idleTimer.unref();
    }
    return answer;
  }

  private end(stream: OpenStream): void {
    if (this.open.get(stream.cursor) !== stream) return;
    this.open.delete(stream.cursor);
    if (stream.idleTimer !== null) clearTimeout(stream.idleTimer);
    stream.idleTimer = null;
    // Behind a pull being served, so return() does not race next(); its finally ends the scan.
    void stream.tail.then(() => stream.chunks.return?.()).catch(() => undefined);
  }
}

function refusal(error: unknown): Answer {
  if (error instanceof RequestError) return errorFrame(error.code, error.message);
  return errorFrame('UNAVAILABLE', `the snapshot could not begin: ${(error as Error).message}`);
}
