/**
 * Peer channels (Single-Socket Channel): one WebSocket per pair of members, dialled by the
 * member whose name sorts first and accepted by the other, carrying Raft messages both ways and
 * the writes followers forward to the leader (Request Pipeline: many in flight, answered by id;
 * what waits on the leader is kept in leader-asks.ts).
 * Frames are MessagePack (entries and snapshots are bytes). A dialler reconnects with
 * exponential backoff and jitter. Sending never waits: a message for a peer that is down, or so
 * slow that its socket's buffer is over a bound, is dropped — Raft resends what matters — so
 * one bad peer never stalls the others.
 *
 * Must never: block the update loop; deliver a frame from a socket that has not said who it is;
 * accept a peer that is not in the cluster.
 */

import type { PeerSecret } from './peer-secret.js';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { certificateNames } from './certificate-names.js';
import { helloRefusal } from './peer-hello.js';
import { ChunkQueue } from './chunk-queue.js';
import { decodeFrame, encodeFrame, type Frame } from './peer-codec.js';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { IncomingMessage } from 'node:http';
import type { Message, NodeId, SnapshotMessage } from '../raft/types.js';
import type { StateResult } from '../state/state-machine.js';
import type { LeaseRequest, PeerLink, RuntimeLogger } from '../node/runtime.js';
import type { LeaseStatus } from '../node/lease-keeper.js';
import { RequestError } from '../node/waiting-list.js';
import { writeCoalescer } from './coalesce.js';
import { LeaderAsks } from './leader-asks.js';
import { tracing } from '../metrics/path-trace.js';
import { traceFrame } from './trace-frames.js';

/** A socket whose unsent bytes pass this is too slow: messages to it are dropped. */
const BUFFERED_BYTES_MAX = 64 * 1024 * 1024;
const BACKOFF_MS_MIN = 50;
const BACKOFF_MS_MAX = 2_000;
/** A dialled peer that has not answered our hello by then is dialled again. */
const HELLO_TIMEOUT_MS = 3_000;
/** Accepted peer connections that have not said their hello yet, at most (a stranger's flood is refused past it). */
const AWAITING_HELLO_MAX = 64;
/** A dial whose WebSocket upgrade has not completed by then is abandoned (and retried). */
const HANDSHAKE_TIMEOUT_MS = 3_000;


export interface PeerTransportOptions {
  readonly id: NodeId;
  /** Every member's peer URL, this one's included. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** This member's client URL, told to peers (for leader hints). */
  readonly clientUrl: string;
  readonly logger: RuntimeLogger;
  /** How long a dialler waits for the peer's hello before it dials again (default 3 s). */
  readonly helloTimeoutMs?: number;
  /** A dial whose WebSocket upgrade has not completed by then is abandoned and redialled (default 3 s). */
  readonly handshakeTimeoutMs?: number;
  /**
   * This cluster's identity (server/cluster-id.ts), said in every hello: a peer that says another
   * — a member of another cluster under the same names, or one restored from another snapshot —
   * is refused, so two clusters never count each other's votes or acknowledgements.
   */
  readonly clusterId?: string;
  /**
   * A member joining an existing cluster (`--initial-cluster-state existing`) knows no cluster
   * id yet: it takes the one the first member of its configuration says in an authenticated
   * hello, and this hears of it (to keep it).
   */
  readonly adoptClusterId?: (id: string) => void;
  /** With peer TLS: this member's certificate, key and the peer CA, read at each dial (so a SIGHUP reload reaches new dials). */
  readonly tls?: () => SecureContextOptions;
  /** Without peer TLS: the cluster secret every hello must prove (--peer-secret-file). */
  readonly secret?: PeerSecret;
}

export interface PeerHandlers {
  onMessage(message: Message): void;
  /** A forwarded write, for this member to propose (only if it leads). */
  onForward(entry: Uint8Array): Promise<StateResult>;
  /** A lease keep-alive or time-to-live a follower forwarded, for this member to answer (only if it leads). */
  onLeaseRequest(request: LeaseRequest): Promise<LeaseStatus[]>;
  /** A snapshot stream from the leader: its message, then its chunks as they arrive. */
  onSnapshot(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): void;
}

export class PeerTransport implements PeerLink {
  private readonly sockets = new Map<NodeId, WebSocket>();
  private readonly coalescers = new WeakMap<WebSocket, (urgent?: boolean) => void>();
  private readonly clientUrls = new Map<NodeId, string>();
  /** When a peer of another cluster was last logged, so a redialling one does not flood the log. */
  private readonly clusterRefusedAt = new Map<NodeId, number>();
  /** When a peer's malformed frame was last logged. */
  private readonly frameRefusedAt = new Map<NodeId, number>();
  /** Requests to the leader awaiting its answer (forwarded writes, lease requests), by id. */
  private readonly asks = new LeaderAsks();
  private readonly timers = new Set<NodeJS.Timeout>();
  private snapshotSeq = 0;
  /** The snapshot stream arriving from each peer, if one is (a newer one replaces it). */
  private readonly inbound = new Map<NodeId, { readonly id: number; readonly chunks: ChunkQueue; readonly socket: WebSocket }>();
  private closed = false;
  /** Accepted connections still waiting for their hello. */
  private awaitingHello = 0;
  private handlers: PeerHandlers | null = null;
  private clientUrl: string;
  /** The members this one talks to, by name, with their peer URLs: the configuration's, as it changes. */
  private readonly peers: Map<NodeId, string>;
  /** The cluster this member belongs to (undefined: one joining, until a member says it). */
  private clusterId: string | undefined;

  constructor(
    private readonly options: PeerTransportOptions,
    private readonly server: WebSocketServer,
  ) {
    this.clientUrl = options.clientUrl;
    this.peers = new Map(options.peers);
    this.clusterId = options.clusterId;
    server.on('connection', this.onConnection);
  }

  /** Begin: deliver to `handlers`, and dial every peer this member dials. */
  /** The open peer connections now, by peer (for measuring round trips). */
  openSockets(): Iterable<readonly [NodeId, WebSocket]> {
    return this.sockets.entries();
  }

  start(handlers: PeerHandlers): void {
    this.handlers = handlers;
    for (const peer of this.peers.keys()) if (this.dials(peer)) this.dial(peer, 0);
  }

  /**
   * The configuration changed: dial the members added (those this member dials), drop the
   * channels of those removed — never dialled again, their hellos refused — and redial one whose
   * URL changed.
   */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    const before = new Map(this.peers);
    this.peers.clear();
    for (const [peer, url] of peers) this.peers.set(peer, url);
    for (const [peer, url] of before) {
      if (peers.get(peer) === url) continue;
      // Removed, or moved: its channel goes (a dialler redials the new URL when it closes).
      this.sockets.get(peer)?.close(1000, peers.has(peer) ? 'the member moved' : 'removed from the cluster');
      if (!peers.has(peer)) this.options.logger.info({ event: 'peer_removed', peer }, `${peer} left the configuration`);
    }
    if (this.handlers === null || this.closed) return;
    for (const peer of peers.keys()) if (!before.has(peer) && this.dials(peer)) this.dial(peer, 0);
  }

  /** A joining member takes the cluster id of the first member of its configuration that says one (its hello passed every check before). */
  private maybeAdopt(theirs: string | undefined): void {
    if (this.clusterId !== undefined || this.options.adoptClusterId === undefined || theirs === undefined) return;
    this.clusterId = theirs;
    this.options.logger.info({ event: 'cluster_joined', clusterId: theirs }, `joined cluster ${theirs}`);
    this.options.adoptClusterId(theirs);
  }

  /** The member whose name sorts first dials; the other accepts. */
  private dials(peer: NodeId): boolean {
    return peer !== this.options.id && this.options.id < peer;
  }

  /** This member's client URL once its port is known (told to peers in each hello). */
  setClientUrl(url: string): void {
    this.clientUrl = url;
  }

  /** The client URL a peer announced, for leader hints. */
  clientUrlOf(peer: NodeId): string | null {
    return peer === this.options.id ? this.clientUrl : (this.clientUrls.get(peer) ?? null);
  }

  send(message: Message): void {
    this.write(message.to, { k: 'raft', m: message });
  }

  forward(to: NodeId, entry: Uint8Array): Promise<StateResult> {
    return this.ask<StateResult>(to, (id) => ({ k: 'fwd', id, entry }), 'a forwarded write', true);
  }

  leaseRequest(to: NodeId, request: LeaseRequest): Promise<LeaseStatus[]> {
    return this.ask<LeaseStatus[]>(to, (id) => ({ k: 'lease', id, request }), 'a lease request', false);
  }

  /** Send the leader a request and wait (bounded) for its answer, matched by id (leader-asks.ts). */
  private ask<T>(to: NodeId, frame: (id: number) => Frame, what: string, isWrite: boolean): Promise<T> {
    return this.asks.ask<T>(to, this.sockets.get(to), (id) => this.write(to, frame(id)), what, isWrite);
  }

  async sendSnapshot(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const to = message.to;
    const socket = this.sockets.get(to);
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) throw new Error(`${to} is unreachable`);
    const id = ++this.snapshotSeq;
    // Each chunk waits for the one before it to reach the kernel: the stream goes at the pace
    // of the channel, and Raft's own messages to the peer interleave with it.
    const sendPaced = (frame: Frame): Promise<void> =>
      new Promise((resolve, reject) => {
        if (this.closed || this.sockets.get(to) !== socket || socket.readyState !== WebSocket.OPEN) {
          reject(new Error(`the channel to ${to} closed during the snapshot`));
          return;
        }
        socket.send(encodeFrame(frame), (error) => (error === undefined || error === null ? resolve() : reject(error)));
      });
    await sendPaced({ k: 'snap', id, m: message });
    for await (const chunk of chunks) await sendPaced({ k: 'snap-chunk', id, chunk });
    await sendPaced({ k: 'snap-end', id });
  }

  close(): void {
    this.closed = true;
    for (const { chunks } of this.inbound.values()) chunks.fail(new Error('the member is stopping'));
    this.inbound.clear();
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets.values()) socket.close(1001, 'member stopping');
    this.asks.failAll();
  }

  // Stays attached after close(): a socket nobody handles would sit open, taken for live by its dialler.
  private readonly onConnection = (socket: WebSocket, request: IncomingMessage): void => {
    if (this.closed) {
      socket.close(1001, 'member stopping');
      return;
    }
    this.accept(socket, request);
  };

  private write(to: NodeId, frame: Frame): boolean {
    const socket = this.sockets.get(to);
    if (socket === undefined || socket.readyState !== WebSocket.OPEN || socket.bufferedAmount > BUFFERED_BYTES_MAX) return false;
    // A forwarded request and its answer have someone waiting: they leave before Raft's own
    // traffic — a follower's ReadIndex and its answer too (linearizable reads wait on them).
    this.coalescers.get(socket)?.(frame.k !== 'raft' || frame.m.type === 'ReadIndex' || frame.m.type === 'ReadIndexResp');
    if (tracing) traceFrame(frame, 'out');
    socket.send(encodeFrame(frame));
    return true;
  }

  private dial(peer: NodeId, attempt: number): void {
    if (this.closed) return;
    const url = this.peers.get(peer);
    if (url === undefined) return; // removed from the configuration meanwhile
    // Frames between members are not masked (an all-zero mask): masking guards proxies against
    // a browser's attacker-chosen bytes, and nothing here comes from a browser.
    // A dial whose upgrade is blackholed gives up after HANDSHAKE_TIMEOUT_MS (and redials), not when TCP does.
    const tls = this.options.tls;
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: this.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS, generateMask: (mask) => void mask.fill(0), ...(tls === undefined ? {} : tls()) });
    if (tls !== undefined) {
      // The member dialled must present a certificate naming it, not only one the peer CA signed:
      // checked before our hello goes out.
      socket.once('upgrade', (response: IncomingMessage) => {
        const named = certificateNames((response.socket as TLSSocket).getPeerCertificate?.() ?? null);
        if (named.includes(peer)) return;
        this.options.logger.warn({ event: 'peer_refused', peer, certificateNames: named }, `${url} answered with a certificate that names ${named.join(', ') || 'no member'}, not ${peer}`);
        socket.terminate();
      });
    }
    socket.binaryType = 'nodebuffer';
    socket.on('upgrade', (response: IncomingMessage) => this.coalescers.set(socket, writeCoalescer(response.socket)));
    socket.on('open', () => {
      const proof = this.options.secret?.helloProof(this.options.id, peer);
      socket.send(encodeFrame({ k: 'hello', from: this.options.id, clientUrl: this.clientUrl, cluster: this.clusterId, ...proof } satisfies Frame));
      // The channel is live only once the peer says who it is back: a peer whose transport is
      // not listening yet would otherwise leave us sending into a socket nobody reads.
      const timer = setTimeout(() => {
        this.options.logger.warn({ event: 'peer_hello_timeout', peer }, `${peer} did not answer the hello; dialling again`);
        socket.terminate();
      }, this.options.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
      socket.once('close', () => clearTimeout(timer));
      socket.once('message', (data: RawData) => {
        clearTimeout(timer);
        if (this.closed) {
          socket.close(1001, 'member stopping');
          return;
        }
        const frame = decodeFrame(data);
        if (frame?.k !== 'hello' || frame.from !== peer) {
          socket.close(1008, 'expected a hello from the member dialled');
          return;
        }
        if (proof !== undefined && !this.options.secret!.checkReply(peer, this.options.id, proof.nonce, frame.proof)) {
          this.options.logger.warn({ event: 'peer_refused', peer }, `${peer} answered without proving the cluster secret`);
          socket.close(1008, 'the answer does not prove the cluster secret');
          return;
        }
        this.maybeAdopt(frame.cluster);
        if (frame.cluster !== this.clusterId) {
          this.refuseCluster(peer, frame.cluster);
          socket.close(1008, 'another cluster');
          return;
        }
        this.clientUrls.set(peer, frame.clientUrl);
        this.adopt(peer, socket);
        attempt = 0;
      });
    });
    socket.on('error', () => undefined); // 'close' follows and redials
    socket.on('close', (code: number, reason: Buffer) => {
      // The peer refused our hello as another cluster's: say so here too (it keeps redialling).
      const other = code === 1008 ? /^another cluster: this is cluster (\S+)$/.exec(reason.toString()) : null;
      if (other !== null) this.refuseCluster(peer, other[1]);
      if (this.sockets.get(peer) === socket) this.sockets.delete(peer);
      if (this.closed || !this.peers.has(peer)) return;
      // Exponential backoff with full jitter, so members restarting together do not dial in step.
      const ceiling = Math.min(BACKOFF_MS_MAX, BACKOFF_MS_MIN * 2 ** Math.min(attempt, 10));
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.dial(peer, attempt + 1);
      }, Math.random() * ceiling);
      this.timers.add(timer);
    });
  }

  private accept(socket: WebSocket, request: IncomingMessage): void {
    socket.binaryType = 'nodebuffer';
    // A connection that has not said who it is costs a socket and a timer: a stranger may hold
    // only a few, and each only for the hello's time.
    if (this.awaitingHello >= AWAITING_HELLO_MAX) {
      this.options.logger.warn({ event: 'peer_refused', remote: request.socket.remoteAddress, reason: 'awaiting_hello' }, `${AWAITING_HELLO_MAX} peer connections are waiting for their hello already: refused another`);
      socket.close(1013, `too many peer connections waiting for their hello (${AWAITING_HELLO_MAX})`);
      return;
    }
    this.awaitingHello += 1;
    let waiting = true;
    const helloDone = (): void => {
      if (!waiting) return;
      waiting = false;
      this.awaitingHello -= 1;
      clearTimeout(helloTimer);
    };
    const helloTimer = setTimeout(() => {
      helloDone();
      socket.terminate();
    }, this.options.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
    this.coalescers.set(socket, writeCoalescer(request.socket));
    let peer: NodeId | null = null;
    socket.once('message', (data: RawData) => {
      helloDone();
      const frame = decodeFrame(data);
      if (this.closed) {
        socket.close(1001, 'member stopping');
        return;
      }
      const certificate = this.options.tls === undefined ? undefined : ((request.socket as TLSSocket).getPeerCertificate?.() ?? null);
      const refusal = helloRefusal(frame, { id: this.options.id, peers: this.peers, certificate, secret: this.options.secret });
      if (refusal !== null) {
        this.options.logger.warn({ event: 'peer_refused', remote: request.socket.remoteAddress, ...refusal.fields }, refusal.log);
        socket.close(1008, refusal.reason);
        return;
      }
      if (frame === null || frame.k !== 'hello') return; // helloRefusal refused it already
      this.maybeAdopt(frame.cluster);
      if (frame.cluster !== this.clusterId) {
        this.refuseCluster(frame.from, frame.cluster);
        socket.close(1008, `another cluster: this is cluster ${this.clusterId ?? '(none)'}`);
        return;
      }
      peer = frame.from;
      this.clientUrls.set(peer, frame.clientUrl);
      this.adopt(peer, socket);
      // Introduce ourselves back, so the dialler learns our client URL too (for leader hints), and
      // prove the secret over its nonce.
      const reply = this.options.secret === undefined || frame.nonce === undefined ? {} : { proof: this.options.secret.replyProof(this.options.id, frame.from, frame.nonce) };
      socket.send(encodeFrame({ k: 'hello', from: this.options.id, clientUrl: this.clientUrl, cluster: this.clusterId, ...reply } satisfies Frame));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      helloDone();
      if (peer !== null && this.sockets.get(peer) === socket) this.sockets.delete(peer);
    });
  }

  /** A frame from `peer` that is not a well-formed peer frame: dropped, and logged at most once a minute per peer. */
  private refuseFrame(peer: NodeId): void {
    const now = Date.now();
    if ((this.frameRefusedAt.get(peer) ?? -Infinity) > now - 60_000) return;
    this.frameRefusedAt.set(peer, now);
    this.options.logger.warn({ event: 'peer_frame_invalid', peer }, `${peer} sent a frame that is not a well-formed peer frame; dropped (a newer or a broken member?)`);
  }

  /** A peer of another cluster under a member's name: logged (at most once a minute per peer), never adopted. */
  private refuseCluster(peer: NodeId, theirs: string | undefined): void {
    const now = Date.now();
    if ((this.clusterRefusedAt.get(peer) ?? -Infinity) > now - 60_000) return;
    this.clusterRefusedAt.set(peer, now);
    this.options.logger.error(
      { event: 'peer_other_cluster', peer, ours: this.clusterId ?? null, theirs: theirs ?? null },
      `${peer} belongs to cluster ${theirs ?? '(none)'}, not this one (${this.clusterId ?? '(none)'}): refused. Was it restored from another snapshot, or left from an old cluster under the same names?`,
    );
  }

  /** Use `socket` for `peer` from now on (a newer connection replaces an older one). */
  private adopt(peer: NodeId, socket: WebSocket): void {
    this.options.logger.info({ event: 'peer_connected', peer }, `connected to ${peer}`);
    socket.once('close', (code: number) => {
      this.options.logger.info({ event: 'peer_disconnected', peer, code }, `lost the connection to ${peer}`);
      const arriving = this.inbound.get(peer);
      if (arriving?.socket === socket) {
        this.inbound.delete(peer);
        arriving.chunks.fail(new Error(`the connection to ${peer} closed during a snapshot`));
      }
      // Writes forwarded over this channel will get no answer: fail them now (the client
      // retries with its stamp) rather than at the forward timeout.
      this.asks.channelClosed(socket, peer);
    });
    const previous = this.sockets.get(peer);
    if (previous !== undefined && previous !== socket) previous.close(1000, 'replaced by a newer connection');
    this.sockets.set(peer, socket);
    socket.on('message', (data: RawData) => {
      const frame = decodeFrame(data);
      if (frame === null) {
        this.refuseFrame(peer);
        return;
      }
      if (frame.k === 'hello') {
        if (frame.from === peer) this.clientUrls.set(peer, frame.clientUrl);
        return;
      }
      if (tracing) traceFrame(frame, 'in');
      try {
        this.receive(peer, frame, socket);
      } catch (error) {
        // A member speaking a frame this one cannot read must not take this process down.
        this.options.logger.warn({ event: 'peer_frame_refused', peer, kind: frame.k, error: (error as Error).message }, `a frame from ${peer} could not be handled`);
      }
    });
  }

  private receive(peer: NodeId, frame: Frame, socket: WebSocket): void {
    const handlers = this.handlers;
    if (handlers === null) return;
    switch (frame.k) {
      case 'raft':
        if (frame.m.from === peer && frame.m.to === this.options.id) handlers.onMessage(frame.m);
        return;
      case 'fwd':
      case 'lease': {
        const refuse = (error: Error): void => {
          // An error this member did not classify may hide a proposal already made: unknown.
          const retryable = error instanceof RequestError ? error : new RequestError(frame.k === 'fwd' ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE', error.message, null);
          this.write(peer, { k: 'fwd-err', id: frame.id, code: retryable.code, message: retryable.message, leader: retryable.leaderHint });
        };
        if (frame.k === 'fwd') {
          handlers.onForward(frame.entry).then((result) => this.write(peer, { k: 'fwd-ok', id: frame.id, result }), refuse);
          return;
        }
        handlers.onLeaseRequest(frame.request).then((answers) => this.write(peer, { k: 'lease-ok', id: frame.id, answers }), refuse);
        return;
      }
      case 'snap': {
        if (frame.m.from !== peer || frame.m.to !== this.options.id) return;
        this.inbound.get(peer)?.chunks.fail(new Error('a newer snapshot replaced it'));
        const chunks = new ChunkQueue(socket);
        this.inbound.set(peer, { id: frame.id, chunks, socket });
        handlers.onSnapshot(frame.m, chunks);
        return;
      }
      case 'snap-chunk':
      case 'snap-end': {
        const arriving = this.inbound.get(peer);
        if (arriving === undefined || arriving.id !== frame.id) return;
        if (frame.k === 'snap-chunk') {
          arriving.chunks.push(frame.chunk);
        } else {
          this.inbound.delete(peer);
          arriving.chunks.end();
        }
        return;
      }
      case 'fwd-ok':
      case 'lease-ok':
      case 'fwd-err': {
        if (frame.k === 'fwd-ok') this.asks.answered(frame.id, frame.result);
        else if (frame.k === 'lease-ok') this.asks.answered(frame.id, frame.answers);
        else this.asks.refused(frame.id, new RequestError(frame.code, frame.message, frame.leader));
        return;
      }
    }
  }
}
