/**
 * The client's Single-Socket Channel: one WebSocket to one member at a time, requests
 * pipelined over it (Request Pipeline) and matched to answers by id, pushes (watch events)
 * handed on. When the member is lost — its socket closes, it does not answer within the attempt
 * deadline (a frozen member), or the caller finds it unable to serve — the channel leaves it
 * and dials the next endpoint (the leader's, when a member named it), after a capped
 * exponential backoff with jitter.
 *
 * It does not retry anything itself: a request whose member was lost fails with `ChannelLost`
 * (saying whether it had been sent), and the client decides — a read is retried freely, a write
 * only with its session stamp. One exception, the handshake (auth.ts, when the client has
 * credentials): every new socket first carries the handshake's frame (`authenticate`), and
 * nothing else until it is answered; a request the member refuses UNAUTHENTICATED (the socket's
 * identity lapsed) is sent once more after the handshake runs again on that socket — it was
 * certainly not applied, so this is safe even for a write.
 *
 * Must never: answer a request with another request's answer; keep a request pending past its
 * deadline; hold more than `maxInFlight` requests on the socket (the rest wait their turn, up
 * to maxQueued: past it a call is refused RESOURCE_EXHAUSTED, not sent);
 * dial while a dial is in progress; send a request on a socket before its handshake is answered;
 * send a request again for any refusal but UNAUTHENTICATED, or more than once for that.
 */

import { WardenError } from '../shared/errors.js';
import { backoffMs, type BackoffPolicy } from './backoff.js';
import type { ClientClock, OpenSocket, SocketLike } from './transport.js';

/** A pino-compatible logger, or any object with these methods. */
export interface ClientLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

/** A request that did not get its answer because its member was lost (or its deadline passed). */
export class ChannelLost extends Error {
  constructor(
    message: string,
    /** Whether the frame had been handed to a socket: if so, a write may have been applied. */
    readonly sent: boolean,
    /** True when the caller's own deadline passed (the member may be fine). */
    readonly deadline = false,
  ) {
    super(message);
    this.name = 'ChannelLost';
  }
}

export interface ChannelOptions {
  readonly endpoints: readonly string[];
  readonly open: OpenSocket;
  readonly clock: ClientClock;
  readonly random: () => number;
  readonly backoff: BackoffPolicy;
  /** A member that answers nothing for this long, with a request waiting, is left. */
  readonly attemptTimeoutMs: number;
  /** Requests on the socket at once; more wait in the channel. */
  readonly maxInFlight: number;
  /** Requests that may wait in the channel; more are refused RESOURCE_EXHAUSTED. */
  readonly maxQueued: number;
  readonly logger?: ClientLogger;
  /** A frame without a request id: a watch push. */
  readonly onPush: (frame: Record<string, unknown>) => void;
  /** A socket opened to `url` (generation counts connections), its handshake answered: watches resubscribe, keep-alives go out. */
  readonly onConnected: (url: string, generation: number) => void;
  /** What each new socket carries first (authentication); none: a socket carries requests as soon as it opens. */
  readonly handshake?: Handshake;
}

export type Answer = Record<string, unknown> & { readonly ok: boolean };

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

/** Requests one client lets wait for a socket (past maxInFlight, or between members) before it refuses more, by default. */
export const QUEUED_MAX_DEFAULT = 100_000;

interface Pending {
  readonly id: number;
  readonly frame: Record<string, unknown>;
  readonly resolve: (answer: Answer & { readonly generation: number }) => void;
  readonly reject: (error: Error) => void;
  readonly deadline: number;
  readonly attemptMs: number;
  /** When the frame went on the socket (client clock), for the attempt deadline. */
  sentAt: number;
  sent: boolean;
  generation: number;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  /** Answered or failed: a settled request still in a waiting line is skipped and purged. */
  settled: boolean;
  /** Handshakes started when it was sent: one started later already renewed the identity it was refused for. */
  epoch: number;
  /** Already sent again after an UNAUTHENTICATED refusal (a second refusal is its answer). */
  renewed: boolean;
  /** The handshake's own frame: its answer opens the socket for requests. */
  readonly handshake: boolean;
}

/** How a request waits for the socket: `urgent` ones (keep-alives, watch subscriptions, retries of sent writes) go first and are never refused for a full line. */
export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** Bounds the wait for this member's answer before it is left (default: the channel's). */
  readonly attemptMs?: number;
  readonly urgent?: boolean;
}

export class Channel {
  private socket: SocketLike | null = null;
  private socketUrl: string | null = null;
  private connected = false;
  /** The open socket's handshake is answered (or there is none): requests may go out on it. */
  private ready = false;
  /** Handshakes started, on any socket (a request remembers the count it was sent under). */
  private handshakes = 0;
  /** The connection whose opening onConnected announced (once per socket, not per renewal). */
  private announced = 0;
  private dialing = false;
  /** Counts sockets opened: an answer or a failure names the connection it came from. */
  private generation = 0;
  private failures = 0;
  private endpointIndex = 0;
  private preferredUrl: string | null = null;
  private nextId = 1;
  private closed = false;
  private retryTimer: unknown = null;
  private sweepTimer: unknown = null;
  /** The client clock's time of the last frame the member sent (answer or push). */
  private lastHeardAt = 0;
  /** Sent, waiting for an answer, by request id. */
  private readonly inFlight = new Map<number, Pending>();
  /** Not yet sent (no socket, or maxInFlight reached), oldest first from queueHead; `urgent` before them. */
  private queue: Pending[] = [];
  private queueHead = 0;
  private urgent: Pending[] = [];

  constructor(private readonly options: ChannelOptions) {
    if (options.endpoints.length === 0) throw new Error('connect: at least one endpoint is needed');
  }

  /** The URL of the member the channel speaks to now, if connected. */
  get url(): string | null {
    return this.connected ? this.socketUrl : null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Requests waiting for the socket (settled ones not yet purged included). */
  private get waiting(): number {
    return this.queue.length - this.queueHead + this.urgent.length;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  /** How long the connected member has said nothing (0 when not connected). */
  silentForMs(): number {
    return this.connected ? this.options.clock.now() - this.lastHeardAt : 0;
  }

  /**
   * Sends `frame` (its `id` is assigned here) and resolves with the answer. `deadline` is on the
   * client clock; `attemptMs` bounds the wait for this member's answer before it is left.
   */
  request(frame: Record<string, unknown>, deadline: number, options: RequestOptions = {}): Promise<Answer & { readonly generation: number }> {
    const { signal, attemptMs = this.options.attemptTimeoutMs, urgent = false } = options;
    if (this.closed) return Promise.reject(new ChannelLost('the client is closed', false));
    if (!urgent && this.queue.length - this.queueHead >= this.options.maxQueued) {
      const max = this.options.maxQueued;
      return Promise.reject(new WardenError('RESOURCE_EXHAUSTED', `${max} requests already wait for a socket in this client (connect option maxQueued); nothing was sent`, { limit: { name: 'maxQueued', flag: 'maxQueued', value: max } }));
    }
    if (signal?.aborted) return Promise.reject(new ChannelLost('aborted', false, true));
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        id: this.nextId++,
        frame,
        resolve,
        reject,
        deadline,
        attemptMs,
        sentAt: 0,
        sent: false,
        generation: 0,
        signal,
        onAbort: () => this.fail(pending, new ChannelLost('aborted', pending.sent, true)),
        settled: false,
        epoch: 0,
        renewed: false,
        handshake: false,
      };
      signal?.addEventListener('abort', pending.onAbort, { once: true });
      (urgent ? this.urgent : this.queue).push(pending);
      this.pump();
      this.startSweep();
    });
  }

  /**
   * Leave the current member (if `generation` is still the current connection) and dial
   * another — `preferUrl` first when given (a leader hint). Pending requests fail `ChannelLost`.
   */
  leave(generation: number, reason: string, preferUrl: string | null = null): void {
    if (generation !== this.generation || this.socket === null) return;
    if (preferUrl !== null && this.options.endpoints.includes(preferUrl)) this.preferredUrl = preferUrl;
    this.options.logger?.debug({ event: 'member_left', url: this.socketUrl, reason }, 'leaving member');
    this.drop(reason);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== null) this.options.clock.clearTimeout(this.retryTimer);
    if (this.sweepTimer !== null) this.options.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    const socket = this.socket;
    this.drop('the client is closed');
    for (const pending of [...this.urgent, ...this.queue.slice(this.queueHead)]) this.fail(pending, new ChannelLost('the client is closed', false));
    this.urgent = [];
    this.queue = [];
    this.queueHead = 0;
    socket?.close(1000, 'client closed');
  }

  /**
   * One timer for every deadline, not one per request (a timer per request costs more CPU than
   * the rest of a request's trip through the client): every SWEEP_MS while anything waits, fail
   * what passed its deadline and leave a member that sat on a request past its attempt deadline.
   */
  private startSweep(): void {
    if (this.sweepTimer !== null || this.closed) return;
    const every = Math.min(250, Math.max(5, Math.floor(this.options.attemptTimeoutMs / 10)));
    this.sweepTimer = this.options.clock.setTimeout(() => {
      this.sweepTimer = null;
      this.sweep();
      if (this.waiting > 0 || this.inFlight.size > 0) this.startSweep();
    }, every);
  }

  private sweep(): void {
    const now = this.options.clock.now();
    const waiting = [...this.urgent, ...this.queue.slice(this.queueHead)];
    for (const pending of waiting) if (!pending.settled && now >= pending.deadline) this.fail(pending, new ChannelLost('the request timed out', false, true));
    // Purge what was settled while waiting (timed out, aborted): the lines hold only live requests.
    this.urgent = this.urgent.filter((pending) => !pending.settled);
    this.queue = this.queue.slice(this.queueHead).filter((pending) => !pending.settled);
    this.queueHead = 0;
    let silentOn: number | null = null;
    let silentMs = 0;
    for (const pending of [...this.inFlight.values()]) {
      if (now >= pending.deadline) this.fail(pending, new ChannelLost('the request timed out', true, true));
      // Left only when the member said nothing at all for the attempt deadline: one slow request
      // (a write waiting on an election) on a member that answers everything else is no reason.
      else if (now - Math.max(pending.sentAt, this.lastHeardAt) >= pending.attemptMs) {
        silentOn = pending.generation;
        silentMs = pending.attemptMs;
      }
    }
    // The member took a request and said nothing for its attempt deadline: frozen, or worse.
    if (silentOn !== null) this.leave(silentOn, `no answer in ${silentMs} ms`);
  }

  /** Stops a request's abort listener: it is being settled. */
  private settle(pending: Pending): void {
    pending.signal?.removeEventListener('abort', pending.onAbort);
  }

  private fail(pending: Pending, error: ChannelLost | WardenError): void {
    if (pending.settled) return;
    pending.settled = true;
    this.settle(pending);
    if (this.inFlight.get(pending.id) === pending) {
      this.inFlight.delete(pending.id);
      this.pump();
    } // else it waits in a line, where pump skips it and sweep purges it
    pending.reject(error);
  }

  /** The next request to send: urgent ones first, then the line, skipping settled ones. */
  private nextWaiting(): Pending | null {
    while (this.urgent.length > 0) {
      const pending = this.urgent.shift()!;
      if (!pending.settled) return pending;
    }
    while (this.queueHead < this.queue.length) {
      const pending = this.queue[this.queueHead++]!;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      if (!pending.settled) return pending;
    }
    return null;
  }

  /** Send what waits, while the socket is open and has room; dial when there is none. */
  private pump(): void {
    if (this.closed) return;
    if (!this.connected) {
      if (this.waiting > 0 || this.inFlight.size > 0) this.dial();
      return;
    }
    if (!this.ready) return; // the handshake's answer opens the socket for requests
    const socket = this.socket!;
    while (this.inFlight.size < this.options.maxInFlight) {
      const pending = this.nextWaiting();
      if (pending === null) break;
      pending.sent = true;
      pending.generation = this.generation;
      pending.epoch = this.handshakes;
      pending.sentAt = this.options.clock.now();
      this.inFlight.set(pending.id, pending);
      try {
        socket.send(JSON.stringify({ ...pending.frame, id: pending.id }));
      } catch (error) {
        this.drop(`send failed: ${(error as Error).message}`);
        return;
      }
    }
  }

  /** Dial the next endpoint, after the backoff its failures earned. Dials only while someone waits (or watches live). */
  dial(): void {
    if (this.closed || this.connected || this.dialing || this.retryTimer !== null) return;
    const wait = this.failures === 0 ? 0 : backoffMs(this.options.backoff, this.failures - 1, this.options.random);
    if (wait > 0) {
      this.retryTimer = this.options.clock.setTimeout(() => {
        this.retryTimer = null;
        this.openNext();
      }, wait);
    } else this.openNext();
  }

  private openNext(): void {
    if (this.closed || this.connected || this.dialing) return;
    const { endpoints } = this.options;
    let url: string;
    if (this.preferredUrl !== null) {
      url = this.preferredUrl;
      this.preferredUrl = null;
      this.endpointIndex = endpoints.indexOf(url);
    } else {
      url = endpoints[this.endpointIndex % endpoints.length]!;
    }
    this.dialing = true;
    const generation = ++this.generation;
    let socket: SocketLike;
    try {
      socket = this.options.open(url);
    } catch (error) {
      this.dialing = false;
      this.failed(`cannot open ${url}: ${(error as Error).message}`);
      return;
    }
    this.socket = socket;
    this.socketUrl = url;
    // A dial the member never answers (a frozen process whose kernel took the TCP connection).
    const dialTimer = this.options.clock.setTimeout(() => {
      if (this.socket === socket && !this.connected) this.drop(`no WebSocket handshake from ${url} in ${this.options.attemptTimeoutMs} ms`);
    }, this.options.attemptTimeoutMs);
    socket.onopen = () => {
      this.options.clock.clearTimeout(dialTimer);
      if (this.socket !== socket) return;
      this.dialing = false;
      this.connected = true;
      this.ready = false;
      this.lastHeardAt = this.options.clock.now();
      this.options.logger?.debug({ event: 'member_connected', url }, 'connected');
      if (this.shake('opening')) return;
      this.ready = true;
      this.opened();
      this.pump();
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.received(event.data);
    };
    socket.onerror = () => {
      // onclose follows with the reason.
    };
    socket.onclose = (event) => {
      this.options.clock.clearTimeout(dialTimer);
      if (this.socket !== socket) return;
      this.drop(`the connection to ${url} closed (${event.code}${event.reason === '' ? '' : `: ${event.reason}`})`);
    };
  }

  /** The socket is gone (or being left): fail what was on it, count the failure, dial again if needed. */
  private drop(reason: string): void {
    const socket = this.socket;
    const wasConnected = this.connected;
    this.socket = null;
    this.connected = false;
    this.ready = false;
    this.dialing = false;
    if (socket !== null) {
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close(1000, 'leaving');
      } catch {
        // already closed
      }
    }
    const lost = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const pending of lost) {
      pending.settled = true;
      this.settle(pending);
      pending.reject(new ChannelLost(reason, true));
    }
    if (wasConnected) this.options.logger?.debug({ event: 'member_lost', reason }, 'member lost');
    this.failed(reason);
  }

  private failed(reason: string): void {
    this.failures += 1;
    this.endpointIndex = (this.endpointIndex + 1) % this.options.endpoints.length;
    if (this.failures % this.options.endpoints.length === 0) this.options.logger?.warn({ event: 'no_member_reachable', reason, failures: this.failures }, 'no member answered; still trying');
    if (!this.closed && (this.waiting > 0 || this.wantConnection())) this.dial();
  }

  /** Whether the client wants a connection with nothing queued (live watches, kept leases). */
  wantConnection: () => boolean = () => false;

  private received(data: unknown): void {
    this.lastHeardAt = this.options.clock.now();
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array)) as Record<string, unknown>;
    } catch {
      this.drop('the member sent a frame that is not JSON');
      return;
    }
    if (typeof frame['watch'] === 'number' && frame['id'] === undefined) {
      this.options.onPush(frame);
      return;
    }
    const id = frame['id'];
    if (typeof id !== 'number') {
      // An answer to a frame the member could not read (id null): ours are always well-formed.
      this.options.logger?.warn({ event: 'unmatched_answer', frame }, 'an answer without a request id');
      return;
    }
    const pending = this.inFlight.get(id);
    if (pending === undefined) return; // its caller gave up (deadline or abort)
    this.inFlight.delete(id);
    if (!pending.handshake && this.renew(pending, frame)) return;
    pending.settled = true;
    this.settle(pending);
    // A handshake's answer may be a refusal: only its acceptance says the member is fine (shaken).
    if (!pending.handshake) this.failures = 0;
    frame['generation'] = pending.generation; // the parsed frame is ours to annotate
    pending.resolve(frame as Answer & { generation: number });
    this.pump();
  }

  /** Announce the open socket (once per connection) to the watches and leases. */
  private opened(): void {
    if (this.announced === this.generation || this.socketUrl === null) return;
    this.announced = this.generation;
    this.options.onConnected(this.socketUrl, this.generation);
  }

  /**
   * Put the handshake's frame on the open socket, ahead of everything; until its answer, the
   * socket carries nothing else. False when the handshake has no frame to send.
   */
  private shake(kind: 'opening' | 'renewal'): boolean {
    const frame = kind === 'opening' ? this.options.handshake?.opening() : this.options.handshake?.renewal();
    if (frame === null || frame === undefined || this.socket === null) return false;
    const socket = this.socket;
    const generation = this.generation;
    this.ready = false;
    this.handshakes += 1;
    const pending: Pending = {
      id: this.nextId++,
      frame,
      resolve: (answer) => this.shaken(generation, answer),
      // Its socket went: the next one shakes hands anew.
      reject: () => undefined,
      // No deadline of its own: the sweep leaves a member that sits on it past the attempt deadline.
      deadline: Number.POSITIVE_INFINITY,
      attemptMs: this.options.attemptTimeoutMs,
      sentAt: this.options.clock.now(),
      sent: true,
      generation,
      signal: undefined,
      onAbort: () => undefined,
      settled: false,
      epoch: this.handshakes,
      renewed: true,
      handshake: true,
    };
    this.inFlight.set(pending.id, pending);
    this.startSweep();
    try {
      socket.send(JSON.stringify({ ...frame, id: pending.id }));
    } catch (error) {
      this.drop(`send failed: ${(error as Error).message}`);
    }
    return true;
  }

  /** The handshake's answer on connection `generation`: the socket opens for requests, or the member is left, or what waits fails. */
  private shaken(generation: number, answer: Answer): void {
    if (generation !== this.generation || !this.connected) return;
    const refusal = this.options.handshake!.answered(answer);
    if (refusal !== null && refusal.retryable) {
      // Throttled, or too busy to check credentials now: like a lost member, another (or this one, after the backoff) may take them.
      this.drop(`authentication refused: ${refusal.code}: ${refusal.message}`);
      return;
    }
    if (refusal === null) this.failures = 0;
    else {
      // Refused for good (a wrong password): what waits for this socket fails with the refusal,
      // unsent, rather than wait for credentials that will not change. The socket stays: a later
      // request goes out as it is, and its own refusal runs the handshake once more.
      this.options.logger?.warn({ event: 'authentication_refused', code: refusal.code, reason: refusal.message }, 'authentication refused');
      for (const pending of [...this.urgent, ...this.queue.slice(this.queueHead)]) this.fail(pending, refusal);
      this.urgent = [];
      this.queue = [];
      this.queueHead = 0;
    }
    this.ready = true;
    this.opened();
    this.pump();
  }

  /**
   * A request the member refused UNAUTHENTICATED — its socket's identity lapsed (the token's
   * TTL passed, the password changed) — waits for a handshake on this socket and is sent once
   * more. Safe for any request, a write too: the member refuses an unauthenticated request
   * before anything else, so it was certainly not applied (UNAUTHENTICATED is 'final' in
   * shared/errors.ts). False when it is not such a refusal, or nothing can renew the identity.
   */
  private renew(pending: Pending, frame: Record<string, unknown>): boolean {
    if (pending.renewed || frame['ok'] !== false || (frame['error'] as { code?: unknown } | undefined)?.code !== 'UNAUTHENTICATED') return false;
    // A handshake started after it was sent (by another refused request) renews it already.
    const renewing = !this.ready || pending.epoch < this.handshakes;
    if (!renewing && !this.shake('renewal')) return false;
    pending.renewed = true;
    pending.sent = false;
    this.urgent.unshift(pending);
    this.pump();
    return true;
  }
}
