/**
 * Write coalescing for a socket that sends many small frames (Request Batch on the wire): the
 * first send in a tick corks the raw TCP socket and the next tick uncorks it, so the answers and
 * messages one turn of the update loop produces leave in one writev instead of one syscall each
 * (on loopback each syscall also pays for the receiver's side of TCP).
 *
 * Must never: hold a write past the current tick (latency), or cork a socket twice per tick.
 */

import type { Duplex } from 'node:stream';

/** Call before each send on a WebSocket whose raw socket is `raw`. */
export function writeCoalescer(raw: Duplex): () => void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    raw.uncork();
  };
  return () => {
    if (corked) return;
    corked = true;
    raw.cork();
    process.nextTick(uncork);
  };
}
