/**
 * The handshake gate of the Single-Socket Channel: whether the open socket may carry requests
 * yet. Every new socket first carries the handshake's frame (auth.ts's `authenticate`, when the
 * client has credentials) and nothing else until it is answered; a request the member refuses
 * UNAUTHENTICATED (the socket's identity lapsed) is sent once more after the handshake runs again
 * on that socket — it was certainly not applied, so this is safe even for a write.
 *
 * Pattern: a connection handshake kept apart from the channel's plumbing. The gate decides when
 * the socket opens for requests and which refusal earns a second try; it reaches back into the
 * Channel only through `HandshakeHost` (send a frame first, leave the member, fail what waits,
 * pump), so the socket, the requests and the dialing stay the Channel's alone.
 *
 * Must never: open a socket for requests before its handshake is answered (or when there is none
 * to run); ask for a request to go again for any refusal but UNAUTHENTICATED (the Channel sends
 * it again at most once); loop on a refused handshake — one failed attempt per call; announce
 * one connection more than once.
 */

import type { WardenError } from '../shared/errors.js';
import type { Answer, ClientLogger } from './channel.js';

/**
 * The first exchange on every new socket, before any request goes out on it — and again on the
 * same socket when a request is refused UNAUTHENTICATED, if `renewal()` has a frame. A refusal
 * the member calls "retry" (throttled, busy) leaves the member as a lost one would; any other
 * fails the requests waiting for the socket with that error, and later ones go out as they are
 * (the member then refuses them by itself): one failed attempt per call, never a loop.
 */
export interface Handshake {
  /** The frame for a new socket; null: nothing to send, the socket is ready at once. */
  opening(): Record<string, unknown> | null;
  /** The frame for an open socket whose identity lapsed; null: nothing could renew it (no password held). */
  renewal(): Record<string, unknown> | null;
  /** Its answer: null when the socket may carry requests, else why it may not. */
  answered(answer: Answer): WardenError | null;
}

/** What the gate may ask of the Channel: no more, so the socket and the requests keep one owner. */
export interface HandshakeHost {
  /** The current connection (counts sockets opened): an answer names the connection it came from. */
  generation(): number;
  /** Whether there is a socket to send on. */
  hasSocket(): boolean;
  /** Whether connection `generation` is still the current one, and open. */
  isOpen(generation: number): boolean;
  /** The URL of the current socket. */
  socketUrl(): string | null;
  /** Put `frame` on the socket ahead of everything, in flight under handshake count `epoch`; its answer goes to `answered`. */
  sendFirst(frame: Record<string, unknown>, epoch: number, answered: (answer: Answer) => void): void;
  /** Leave the member (as if it were lost): another, or this one after the backoff, may accept. */
  drop(reason: string): void;
  /** The member accepted the handshake: it is fine, so the backoff starts over. */
  memberFine(): void;
  /** Fail every request waiting for the socket with `error`, unsent. */
  failWaiting(error: WardenError): void;
  /** Send what waits, now that the socket may carry it. */
  pump(): void;
}

export class HandshakeGate {
  /** The open socket's handshake is answered (or there is none): requests may go out on it. */
  private isReady = false;
  /** Handshakes started, on any socket (a request remembers the count it was sent under). */
  private started = 0;
  /** The connection whose opening onConnected announced (once per socket, not per renewal). */
  private announced = 0;

  constructor(
    private readonly handshake: Handshake | undefined,
    private readonly host: HandshakeHost,
    private readonly onConnected: (url: string, generation: number) => void,
    private readonly logger: ClientLogger | undefined,
  ) {}

  get ready(): boolean {
    return this.isReady;
  }

  /** Handshakes started so far: a request sent under an older count was refused for an identity since renewed. */
  get epoch(): number {
    return this.started;
  }

  /** A socket just opened: its handshake goes first; with none to run, it carries requests at once. */
  socketOpened(): void {
    this.isReady = false;
    if (this.shake('opening')) return;
    this.isReady = true;
    this.announce();
    this.host.pump();
  }

  /** The socket is gone: the next one shakes hands anew. */
  socketLost(): void {
    this.isReady = false;
  }

  /**
   * Whether a request sent under handshake count `epoch` and answered `answer` is to wait for a
   * handshake on this socket and go once more: true only for UNAUTHENTICATED — its socket's
   * identity lapsed (the token's TTL passed, the password changed). Safe for any request, a write
   * too: the member refuses an unauthenticated request before anything else, so it was certainly
   * not applied (UNAUTHENTICATED is 'final' in shared/errors.ts). False as well when nothing can
   * renew the identity. Runs the renewal handshake when none already covers the request.
   */
  renews(answer: Record<string, unknown>, epoch: number): boolean {
    if (answer['ok'] !== false || (answer['error'] as { code?: unknown } | undefined)?.code !== 'UNAUTHENTICATED') return false;
    // A handshake started after it was sent (by another refused request) renews it already.
    const renewing = !this.isReady || epoch < this.started;
    return renewing || this.shake('renewal');
  }

  /**
   * Put the handshake's frame on the open socket, ahead of everything; until its answer, the
   * socket carries nothing else. False when the handshake has no frame to send.
   */
  private shake(kind: 'opening' | 'renewal'): boolean {
    const frame = kind === 'opening' ? this.handshake?.opening() : this.handshake?.renewal();
    if (frame === null || frame === undefined || !this.host.hasSocket()) return false;
    const generation = this.host.generation();
    this.isReady = false;
    this.started += 1;
    this.host.sendFirst(frame, this.started, (answer) => this.shaken(generation, answer));
    return true;
  }

  /** The handshake's answer on connection `generation`: the socket opens for requests, or the member is left, or what waits fails. */
  private shaken(generation: number, answer: Answer): void {
    if (!this.host.isOpen(generation)) return;
    const refusal = this.handshake!.answered(answer);
    if (refusal !== null && refusal.retryable) {
      // Throttled, or too busy to check credentials now: like a lost member, another (or this one, after the backoff) may take them.
      this.host.drop(`authentication refused: ${refusal.code}: ${refusal.message}`);
      return;
    }
    if (refusal === null) this.host.memberFine();
    else {
      // Refused for good (a wrong password): what waits for this socket fails with the refusal,
      // unsent, rather than wait for credentials that will not change. The socket stays: a later
      // request goes out as it is, and its own refusal runs the handshake once more.
      this.logger?.warn({ event: 'authentication_refused', code: refusal.code, reason: refusal.message }, 'authentication refused');
      this.host.failWaiting(refusal);
    }
    this.isReady = true;
    this.announce();
    this.host.pump();
  }

  /** Tell the watches and leases the socket is open (once per connection, not per renewal): they resubscribe, keep-alives go out. */
  private announce(): void {
    const generation = this.host.generation();
    const url = this.host.socketUrl();
    if (this.announced === generation || url === null) return;
    this.announced = generation;
    this.onConnected(url, generation);
  }
}
