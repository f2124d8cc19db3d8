/**
 * The channel's link to one member at a time: which endpoint to dial next (the leader a member
 * named, else the next in turn), how long to wait first (a capped exponential backoff with
 * jitter, once members fail), the socket itself, and its end — closed by the member, a dial it
 * never answered, or left by the Channel (a frozen member, one unable to serve). What travels
 * over the socket is the Channel's: the link reports an open socket, a frame, or a lost one.
 *
 * Pattern: the connection half of the Single-Socket Channel, driven by the Channel through
 * `LinkEvents`, so that member choice and socket lifetime change apart from request handling.
 *
 * Must never: dial while a dial is in progress or a backoff runs; hold two sockets, or act on
 * an event of a socket it has left; dial an endpoint the client was not given (a hint naming
 * another is ignored); dial once closed, or when nothing wants a socket; wait between tries while
 * members answer; go silent while no member answers (one warning per round of the endpoints).
 */

import { backoffMs } from './backoff.js';
import type { ChannelOptions } from './channel.js';
import type { SocketLike } from './transport.js';

export type LinkOptions = Pick<ChannelOptions, 'endpoints' | 'open' | 'clock' | 'random' | 'backoff' | 'attemptTimeoutMs' | 'logger'>;

/** What the link tells the Channel. */
export interface LinkEvents {
  /** The socket to `url` opened: its handshake, then requests, may go out. */
  opened(url: string): void;
  /** A frame the member sent on the current socket. */
  received(data: unknown): void;
  /** The socket is gone (or being left): whatever was sent on it will not be answered. */
  lost(reason: string): void;
  /** Whether anything wants a socket (requests waiting, live watches, kept leases): only then is a lost one replaced. */
  wanted(): boolean;
}

export class MemberLink {
  private current: SocketLike | null = null;
  private currentUrl: string | null = null;
  private isConnected = false;
  private dialing = false;
  /** Counts sockets opened: an answer or a failure names the connection it came from. */
  private connections = 0;
  /** Members failed in a row, since one last answered: drives the backoff. */
  private failures = 0;
  private endpointIndex = 0;
  private preferredUrl: string | null = null;
  private closed = false;
  private retryTimer: unknown = null;

  constructor(
    private readonly options: LinkOptions,
    private readonly events: LinkEvents,
  ) {}

  /** The current socket: open, or still dialing; null when there is none. */
  get socket(): SocketLike | null {
    return this.current;
  }

  /** The URL of the current socket (kept after it is lost, until the next one). */
  get socketUrl(): string | null {
    return this.currentUrl;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get generation(): number {
    return this.connections;
  }

  /** A member answered: it is fine, so the backoff starts over. */
  answered(): void {
    this.failures = 0;
  }

  /** Leave the member if `generation` is still the current connection, and dial another — `preferUrl` first when given. */
  leave(generation: number, reason: string, preferUrl: string | null): void {
    if (generation !== this.connections || this.current === null) return;
    if (preferUrl !== null && this.options.endpoints.includes(preferUrl)) this.preferredUrl = preferUrl;
    this.options.logger?.debug({ event: 'member_left', url: this.currentUrl, reason }, 'leaving member');
    this.drop(reason);
  }

  /** No socket and no dial from now on; the current socket is dropped (the caller closes it for good). */
  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) this.options.clock.clearTimeout(this.retryTimer);
    this.drop('the client is closed');
  }

  /** Dial the next endpoint, after the backoff its failures earned. */
  dial(): void {
    if (this.closed || this.isConnected || this.dialing || this.retryTimer !== null) return;
    const wait = this.failures === 0 ? 0 : backoffMs(this.options.backoff, this.failures - 1, this.options.random);
    if (wait > 0) {
      this.retryTimer = this.options.clock.setTimeout(() => {
        this.retryTimer = null;
        this.openNext();
      }, wait);
    } else this.openNext();
  }

  private openNext(): void {
    if (this.closed || this.isConnected || this.dialing) return;
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
    this.connections += 1;
    let socket: SocketLike;
    try {
      socket = this.options.open(url);
    } catch (error) {
      this.dialing = false;
      this.failed(`cannot open ${url}: ${(error as Error).message}`);
      return;
    }
    this.current = socket;
    this.currentUrl = url;
    // A dial the member never answers (a frozen process whose kernel took the TCP connection).
    const dialTimer = this.options.clock.setTimeout(() => {
      if (this.current === socket && !this.isConnected) this.drop(`no WebSocket handshake from ${url} in ${this.options.attemptTimeoutMs} ms`);
    }, this.options.attemptTimeoutMs);
    socket.onopen = () => {
      this.options.clock.clearTimeout(dialTimer);
      if (this.current !== socket) return;
      this.dialing = false;
      this.isConnected = true;
      this.options.logger?.debug({ event: 'member_connected', url }, 'connected');
      this.events.opened(url);
    };
    socket.onmessage = (event) => {
      if (this.current !== socket) return;
      this.events.received(event.data);
    };
    socket.onerror = () => {
      // onclose follows with the reason.
    };
    socket.onclose = (event) => {
      this.options.clock.clearTimeout(dialTimer);
      if (this.current !== socket) return;
      this.drop(`the connection to ${url} closed (${event.code}${event.reason === '' ? '' : `: ${event.reason}`})`);
    };
  }

  /** The socket is gone (or being left): what was on it is lost, the failure counts, and another is dialed if wanted. */
  drop(reason: string): void {
    const socket = this.current;
    const wasConnected = this.isConnected;
    this.current = null;
    this.isConnected = false;
    this.dialing = false;
    if (socket !== null) {
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close(1000, 'leaving');
      } catch {
        // already closed
      }
    }
    this.events.lost(reason);
    if (wasConnected) this.options.logger?.debug({ event: 'member_lost', reason }, 'member lost');
    this.failed(reason);
  }

  private failed(reason: string): void {
    this.failures += 1;
    this.endpointIndex = (this.endpointIndex + 1) % this.options.endpoints.length;
    if (this.failures % this.options.endpoints.length === 0) this.options.logger?.warn({ event: 'no_member_reachable', reason, failures: this.failures }, 'no member answered; still trying');
    if (!this.closed && this.events.wanted()) this.dial();
  }
}
