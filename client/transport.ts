/**
 * The client's one seam to the outside world: how it opens a WebSocket and keeps time. The Node
 * entry (index.ts) opens sockets with `ws`; the browser entry (browser.ts) with the global
 * `WebSocket`; unit tests with an in-memory twin and a fake clock. Everything else in client/
 * speaks only to these interfaces, so the same library runs under Node 20 and in a browser.
 *
 * Must never: import a Node builtin, or a package that does (this file is bundled for browsers).
 */

/** The part of the WHATWG WebSocket the client uses (both `ws` and browsers' sockets have it). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
}

/** Opens a socket to a member's client URL (`ws://host:port`). */
export type OpenSocket = (url: string) => SocketLike;

/** Time, as the client sees it: a monotonic clock and timers (a fake in unit tests). */
export interface ClientClock {
  /** Milliseconds on a clock that never goes back. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_CLOCK: ClientClock = {
  now: () => performance.now(),
  // Timers keep a Node process alive, as the open socket does: a call waiting between two dials
  // must not let the process exit under it. `close()` ends them all.
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The WebSocket readyState of an open socket. */
export const SOCKET_OPEN = 1;
