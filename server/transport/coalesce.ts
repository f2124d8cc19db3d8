/**
 * Write coalescing (Request Batch on the wire): the first send on a socket corks its raw TCP
 * socket, and every socket corked meanwhile is uncorked together once the code that wrote has
 * returned to the event loop and every promise chain it released has run (the answers built from
 * a turn's results) — before any other event is handled. So a turn's messages and its answers
 * to one peer leave in one writev (a leader's commit news and the forwarded write's answer
 * together), and each socket costs one syscall per loop iteration, not one per frame (on
 * loopback each syscall also pays for the receiver's side of TCP).
 *
 * Sockets leave in order of urgency: those carrying an answer a client waits on first (client
 * connections, and a peer channel carrying a forwarded write or its answer), then the rest
 * (Raft messages). A loopback writev costs tens of µs: a client's answer should not wait behind
 * the commit news to every follower.
 *
 * Must never: hold a write past the event being handled (latency), or cork a socket twice in one
 * batch.
 */

import type { Writable } from 'node:stream';

/** What coalescing needs of a socket. */
type Corkable = Pick<Writable, 'cork' | 'uncork'>;

interface Corked {
  readonly raw: Corkable;
  /** The batch it is corked in (0: not corked). */
  batch: number;
  urgent: boolean;
}

/** Sockets corked since the last flush: urgent ones, then the others. */
let urgentQueue: Corked[] = [];
let otherQueue: Corked[] = [];
let flushScheduled = false;
/** The batch sockets cork in now; a flush closes it. */
let batch = 1;

function flush(): void {
  flushScheduled = false;
  const flushing = batch++;
  const urgent = urgentQueue;
  const other = otherQueue;
  urgentQueue = [];
  otherQueue = [];
  // Each socket uncorked once, and only for the batch it corked in (one raised to urgent is in both lists).
  const uncork = (socket: Corked): void => {
    if (socket.batch !== flushing) return;
    socket.batch = 0;
    socket.urgent = false;
    try {
      socket.raw.uncork();
    } catch {
      // A socket torn down meanwhile: its own error and close events tell its owner; the others must still leave.
    }
  };
  for (const socket of urgent) uncork(socket);
  for (const socket of other) uncork(socket);
}

/**
 * Call before each send on a WebSocket whose raw socket is `raw`; `urgent` when the frame is an
 * answer someone waits on (or `alwaysUrgent` for a client connection, whose every frame is).
 */
export function writeCoalescer(raw: Corkable, alwaysUrgent = false): (urgent?: boolean) => void {
  const socket: Corked = { raw, batch: 0, urgent: false };
  return (urgent = alwaysUrgent) => {
    if (socket.batch === 0) {
      socket.batch = batch;
      raw.cork();
      if (urgent) {
        socket.urgent = true;
        urgentQueue.push(socket);
      } else {
        otherQueue.push(socket);
      }
      if (!flushScheduled) {
        flushScheduled = true;
        // A tick scheduled from a microtask runs once the microtask queue is empty: after the
        // promise chains this code released (the answers built from a turn's results) have run.
        queueMicrotask(() => process.nextTick(flush));
      }
      return;
    }
    if (urgent && !socket.urgent) {
      // Raised to urgent: it leaves with the first; its place among the others is skipped.
      socket.urgent = true;
      urgentQueue.push(socket);
    }
  };
}
