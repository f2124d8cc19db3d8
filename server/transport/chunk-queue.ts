/**
 * The chunks of one snapshot arriving from the leader, as an async iterable the store consumes
 * at its own pace (Backpressure): past a few chunks waiting, the peer's socket is paused, and it
 * is resumed once the store has caught up.
 *
 * Must never: hold more than PAUSE_AT chunks unread without pausing the socket; leave the socket
 * paused once it failed.
 */

import type { WebSocket } from 'ws';

/**
 * The chunks of one arriving snapshot, as an async iterable for the store to consume. When the
 * store falls behind the network, the peer's socket is paused (a bound on what waits in memory)
 * and resumed once the store has caught up.
 */
export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private static readonly PAUSE_AT = 8;
  private readonly chunks: Uint8Array[] = [];
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly socket: WebSocket) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    if (this.chunks.length >= ChunkQueue.PAUSE_AT) this.socket.pause();
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: Error): void {
    this.failure = error;
    this.socket.resume();
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        if (this.chunks.length < ChunkQueue.PAUSE_AT / 2 && this.socket.isPaused) this.socket.resume();
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
