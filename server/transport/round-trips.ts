/**
 * The round trip to each peer, measured with WebSocket pings on the peer connections (a ping
 * every interval on each open socket; its pong's arrival gives the time), for the metrics.
 *
 * Pattern: a sampler on a timer.
 * Must never: keep a socket alive that the transport dropped (it reads the transport's sockets
 * afresh each round), or let a ping it never got an answer to stall the next.
 */

import type { WebSocket } from 'ws';

export class PeerRoundTrips {
  private readonly seconds = new Map<string, number>();
  /** Pings sent and not yet answered, by socket. */
  private readonly pending = new WeakMap<WebSocket, number>();
  private readonly listening = new WeakSet<WebSocket>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    /** The transport's open sockets, by peer, now. */
    private readonly sockets: () => Iterable<readonly [string, WebSocket]>,
    private readonly intervalMs = 2_000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.round(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** The last round trip measured to each peer connected now, in seconds (a peer whose ping went unanswered for a round has none). */
  get last(): ReadonlyMap<string, number> {
    const connected = new Set([...this.sockets()].map(([peer]) => peer));
    for (const peer of [...this.seconds.keys()]) if (!connected.has(peer)) this.seconds.delete(peer);
    return this.seconds;
  }

  private round(): void {
    for (const [peer, socket] of this.sockets()) {
      if (socket.readyState !== socket.OPEN) continue;
      // One ping at a time: a pong is timed from the ping it answers. Unanswered for a whole
      // round, the peer's last figure is stale: it is dropped, and the ping tried again.
      const pendingSince = this.pending.get(socket);
      if (pendingSince !== undefined) {
        this.seconds.delete(peer);
        if (performance.now() - pendingSince < 3 * this.intervalMs) continue;
      }
      if (!this.listening.has(socket)) {
        this.listening.add(socket);
        socket.on('pong', () => {
          const sentAt = this.pending.get(socket);
          if (sentAt === undefined) return;
          this.pending.delete(socket);
          this.seconds.set(peer, (performance.now() - sentAt) / 1_000);
        });
      }
      this.pending.set(socket, performance.now());
      try {
        socket.ping();
      } catch {
        // The socket closed between the check and the ping: the transport redials it.
      }
    }
  }
}
