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
 * only with its session stamp. One exception, the handshake (handshake.ts): a request refused
 * UNAUTHENTICATED goes once more after the socket's identity is renewed.
 *
 * Pattern: Single-Socket Channel with a Request Pipeline. This module is the pipeline: ids,
 * answers, deadlines, what is on the socket. Its parts change for other reasons and live apart:
 * which member and when to dial, and the socket's lifetime (member-link.ts); what waits for the
 * socket (waiting-line.ts); when the socket may carry requests, and which refusal earns a second
 * try (handshake.ts). Each holds its own "Must never" (no dial while a dial is in progress, no
 * line past maxQueued, no request before the handshake's answer, among them).
 *
 * Must never: answer a request with another request's answer; keep a request pending past its
 * deadline; hold more than `maxInFlight` requests on the socket (the rest wait their turn in the
 * line); send a request on a socket the gate has not opened (its handshake unanswered); send a
 * request again unless the gate asks (UNAUTHENTICATED), or more than once for that.
 */

import { WardenError } from '../shared/errors.js';
import type { BackoffPolicy } from './backoff.js';
import { HandshakeGate, type Handshake } from './handshake.js';
import { MemberLink } from './member-link.js';
import type { ClientClock, OpenSocket } from './transport.js';
import { WaitingLine } from './waiting-line.js';

export { QUEUED_MAX_DEFAULT } from './waiting-line.js';

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
  private nextId = 1;
  private closed = false;
  private sweepTimer: unknown = null;
  /** The client clock's time of the last frame the member sent (answer or push). */
  private lastHeardAt = 0;
  /** Sent, waiting for an answer, by request id. */
  private readonly inFlight = new Map<number, Pending>();
  /** Not yet sent (no socket, or maxInFlight reached). */
  private readonly line: WaitingLine<Pending>;
  private readonly gate: HandshakeGate;
  private readonly link: MemberLink;

  constructor(private readonly options: ChannelOptions) {
    if (options.endpoints.length === 0) throw new Error('connect: at least one endpoint is needed');
    this.line = new WaitingLine(options.maxQueued);
    // Closures, not public methods: the link and the gate get exactly these, and the Channel's callers none of them.
    this.link = new MemberLink(options, {
      opened: () => {
        this.lastHeardAt = this.options.clock.now();
        this.gate.socketOpened();
      },
      received: (data) => this.received(data),
      lost: (reason) => this.lost(reason),
      wanted: () => this.line.size > 0 || this.wantConnection(),
    });
    const link = this.link;
    this.gate = new HandshakeGate(
      options.handshake,
      {
        generation: () => link.generation,
        hasSocket: () => link.socket !== null,
        isOpen: (generation) => generation === link.generation && link.connected,
        socketUrl: () => link.socketUrl,
        sendFirst: (frame, epoch, answered) => this.sendFirst(frame, epoch, answered),
        drop: (reason) => link.drop(reason),
        memberFine: () => link.answered(),
        failWaiting: (error) => {
          for (const pending of this.line.drain()) this.fail(pending, error);
        },
        pump: () => this.pump(),
      },
      options.onConnected,
      options.logger,
    );
  }

  /** The URL of the member the channel speaks to now, if connected. */
  get url(): string | null {
    return this.link.connected ? this.link.socketUrl : null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get currentGeneration(): number {
    return this.link.generation;
  }

  /** How long the connected member has said nothing (0 when not connected). */
  silentForMs(): number {
    return this.link.connected ? this.options.clock.now() - this.lastHeardAt : 0;
  }

  /**
   * Sends `frame` (its `id` is assigned here) and resolves with the answer. `deadline` is on the
   * client clock; `attemptMs` bounds the wait for this member's answer before it is left.
   */
  request(frame: Record<string, unknown>, deadline: number, options: RequestOptions = {}): Promise<Answer & { readonly generation: number }> {
    const { signal, attemptMs = this.options.attemptTimeoutMs, urgent = false } = options;
    if (this.closed) return Promise.reject(new ChannelLost('the client is closed', false));
    const full = this.line.refusal(urgent);
    if (full !== null) return Promise.reject(full);
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
      this.line.push(pending, urgent);
      this.pump();
      this.startSweep();
    });
  }

  /**
   * Leave the current member (if `generation` is still the current connection) and dial
   * another — `preferUrl` first when given (a leader hint). Pending requests fail `ChannelLost`.
   */
  leave(generation: number, reason: string, preferUrl: string | null = null): void {
    this.link.leave(generation, reason, preferUrl);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== null) this.options.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    const socket = this.link.socket;
    this.link.close();
    for (const pending of this.line.drain()) this.fail(pending, new ChannelLost('the client is closed', false));
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
      if (this.line.size > 0 || this.inFlight.size > 0) this.startSweep();
    }, every);
  }

  private sweep(): void {
    const now = this.options.clock.now();
    for (const pending of this.line.all()) if (!pending.settled && now >= pending.deadline) this.fail(pending, new ChannelLost('the request timed out', false, true));
    this.line.purge();
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

  /** Send what waits, while the socket is open and has room; dial when there is none. */
  private pump(): void {
    if (this.closed) return;
    if (!this.link.connected) {
      if (this.line.size > 0 || this.inFlight.size > 0) this.link.dial();
      return;
    }
    if (!this.gate.ready) return; // the handshake's answer opens the socket for requests
    const socket = this.link.socket!;
    while (this.inFlight.size < this.options.maxInFlight) {
      const pending = this.line.next();
      if (pending === null) break;
      pending.sent = true;
      pending.generation = this.link.generation;
      pending.epoch = this.gate.epoch;
      pending.sentAt = this.options.clock.now();
      this.inFlight.set(pending.id, pending);
      try {
        socket.send(JSON.stringify({ ...pending.frame, id: pending.id }));
      } catch (error) {
        this.link.drop(`send failed: ${(error as Error).message}`);
        return;
      }
    }
  }

  /** Dial the next endpoint, after the backoff its failures earned. Dials only while someone waits (or watches live). */
  dial(): void {
    this.link.dial();
  }

  /** The socket is gone (or being left): what was sent on it fails, marked sent (a write may have been applied). */
  private lost(reason: string): void {
    this.gate.socketLost();
    const onSocket = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const pending of onSocket) {
      pending.settled = true;
      this.settle(pending);
      pending.reject(new ChannelLost(reason, true));
    }
  }

  /** Whether the client wants a connection with nothing queued (live watches, kept leases). */
  wantConnection: () => boolean = () => false;

  private received(data: unknown): void {
    this.lastHeardAt = this.options.clock.now();
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array)) as Record<string, unknown>;
    } catch {
      this.link.drop('the member sent a frame that is not JSON');
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
    if (!pending.handshake && !pending.renewed && this.gate.renews(frame, pending.epoch)) {
      // Certainly not applied (refused before anything else): it goes first once the identity is renewed.
      pending.renewed = true;
      pending.sent = false;
      this.line.pushFront(pending);
      this.pump();
      return;
    }
    pending.settled = true;
    this.settle(pending);
    // A handshake's answer may be a refusal: only its acceptance says the member is fine (handshake.ts).
    if (!pending.handshake) this.link.answered();
    frame['generation'] = pending.generation; // the parsed frame is ours to annotate
    pending.resolve(frame as Answer & { generation: number });
    this.pump();
  }

  /** The handshake's frame, ahead of everything on the socket (see HandshakeHost.sendFirst). */
  private sendFirst(frame: Record<string, unknown>, epoch: number, answered: (answer: Answer) => void): void {
    const socket = this.link.socket!;
    const pending: Pending = {
      id: this.nextId++,
      frame,
      resolve: answered,
      // Its socket went: the next one shakes hands anew.
      reject: () => undefined,
      // No deadline of its own: the sweep leaves a member that sits on it past the attempt deadline.
      deadline: Number.POSITIVE_INFINITY,
      attemptMs: this.options.attemptTimeoutMs,
      sentAt: this.options.clock.now(),
      sent: true,
      generation: this.link.generation,
      signal: undefined,
      onAbort: () => undefined,
      settled: false,
      epoch,
      renewed: true,
      handshake: true,
    };
    this.inFlight.set(pending.id, pending);
    this.startSweep();
    try {
      socket.send(JSON.stringify({ ...frame, id: pending.id }));
    } catch (error) {
      this.link.drop(`send failed: ${(error as Error).message}`);
    }
  }
}
