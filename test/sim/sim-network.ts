/**
 * The simulated network: Raft messages between members (delayed, reordered, dropped,
 * duplicated, held, cut by partitions); each member's peer link as the peer transport behaves
 * (forwarded writes, lease requests, snapshot streams chunk by chunk); client requests and
 * replies (lossy, but never cut by a partition, so a client can keep talking to a deposed
 * leader); and watchers' ordered connections to members. Until the heal the seed's weather
 * applies; after it the network is fast and reliable.
 *
 * Pattern: every send becomes an event on the agenda after a seeded delay; a delivery runs on
 * whichever incarnation of the receiver is up when it lands.
 *
 * Must never: deliver a message across a cut link, let a dead sender's output leave, or draw
 * randomness in an order other than the order of the sends.
 */

import type { Message, NodeId, SnapshotMessage } from '../../server/raft/index.js';
import type { LeaseRequest, PeerLink } from '../../server/node/runtime.js';
import { RequestError } from '../../server/node/waiting-list.js';
import type { StateResult } from '../../server/state/state-machine.js';
import type { LeaseStatus } from '../../server/node/lease-keeper.js';
import type { WatchSink } from '../../server/watch/hub.js';
import type { ClientReply, ClientRequest } from './client.js';
import type { SimMember } from './sim-member.js';
import type { SimWatcher } from './watcher.js';
import { HEALTHY_DELAY_MS_MAX, type SimWorld } from './sim-world.js';

/** A forwarded write or lease request with no answer by then fails, as the peer transport's does. */
const PEER_ASK_TIMEOUT_MS = 1_000;

/** The seed's network weather (part of its fault profile). */
export interface NetworkWeather {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayMsMax: number;
  /** Share of messages held 100–1,500 ms: stale votes, acks and heartbeats from earlier terms. */
  readonly longDelayRate: number;
}

/** The members a delivery reaches: whichever incarnation is up. */
export interface NetworkMembers {
  readonly members: ReadonlyMap<NodeId, SimMember>;
  readonly incarnations: ReadonlyMap<NodeId, number>;
}

interface WatchConnection {
  readonly watcher: SimWatcher;
  readonly connection: number;
  lastAt: number;
  closed: boolean;
}

export class SimNetwork {
  /** Cut links, as `from>to`: partitions cut only member links. */
  readonly blocked = new Set<string>();
  /** Watch connections open on each member: they close when it crashes. */
  private readonly watchConnections = new Map<NodeId, Set<WatchConnection>>();

  constructor(
    private readonly world: SimWorld,
    private readonly weather: NetworkWeather,
    private readonly cluster: NetworkMembers,
    /** A leader answered a forwarded keep-alive renewing `lease` (for the lease properties). */
    private readonly renewedAtLeader: (lease: number) => void,
  ) {}

  private deliverAfter(): number {
    const { world, weather } = this;
    if (this.lossy() && world.random.chance(weather.longDelayRate)) return world.now + world.random.between(100, 1500);
    // Healed means healthy: Raft promises liveness only while a round trip is well under an
    // election timeout, so slow-network weather ends with the other faults.
    const delayMsMax = world.healing ? Math.min(weather.delayMsMax, HEALTHY_DELAY_MS_MAX) : weather.delayMsMax;
    return world.now + world.random.between(1, delayMsMax);
  }

  private lossy(): boolean {
    return !this.world.healing;
  }

  private sendRaft(message: Message): void {
    const { world, weather } = this;
    if (this.blocked.has(`${message.from}>${message.to}`)) return;
    if (this.lossy() && world.random.chance(weather.dropRate)) {
      world.faults.dropped++;
      return;
    }
    world.queue.push(this.deliverAfter(), { kind: 'raft', message });
    if (this.lossy() && world.random.chance(weather.duplicateRate)) {
      world.faults.duplicated++;
      world.queue.push(this.deliverAfter(), { kind: 'raft', message });
    }
  }

  /**
   * A watcher opens a connection to `memberId` and starts its watch there. Frames come back in
   * order, each after a network delay; a member down when the request arrives (or that never
   * answers) refuses it after a while, and the watcher tries elsewhere.
   */
  connectWatcher(watcher: SimWatcher, memberId: NodeId, fromRevision: number | undefined): void {
    const { world, cluster } = this;
    const connection: WatchConnection = { watcher, connection: watcher.connection, lastAt: world.now, closed: false };
    let opened = false;
    const toWatcher = (run: () => void): void => {
      connection.lastAt = Math.max(connection.lastAt, this.deliverAfter());
      world.queue.push(connection.lastAt, { kind: 'call', run });
    };
    world.queue.push(this.deliverAfter(), {
      kind: 'run',
      member: memberId,
      incarnation: null,
      run: () => {
        const member = cluster.members.get(memberId)!;
        const incarnation = cluster.incarnations.get(memberId);
        const sink: WatchSink = {
          push: (frame) => {
            if (!connection.closed && cluster.incarnations.get(memberId) === incarnation) toWatcher(() => watcher.onFrame(connection.connection, frame));
            return true;
          },
        };
        const started = member.watch(sink, watcher.id, fromRevision);
        opened = true;
        if (!started.ok) {
          toWatcher(() => watcher.onRefused(connection.connection));
          return;
        }
        toWatcher(() => watcher.onFrame(connection.connection, JSON.stringify({ started: started.revision })));
        let open = this.watchConnections.get(memberId);
        if (open === undefined) this.watchConnections.set(memberId, (open = new Set()));
        open.add(connection);
      },
    });
    world.queue.push(world.now + 2_000, { kind: 'call', run: () => void (opened || watcher.onRefused(connection.connection)) });
  }

  /** Member `id` crashed: each of its watchers hears its connection end after the frames already on the way. */
  closeWatchConnections(id: NodeId): void {
    const { world } = this;
    for (const connection of this.watchConnections.get(id) ?? []) {
      connection.closed = true;
      world.queue.push(Math.max(connection.lastAt, world.now + 1), { kind: 'call', run: () => connection.watcher.onClosed(connection.connection) });
    }
    this.watchConnections.delete(id);
  }

  /** Run `run` on member `to` after a network delay, unless the link from `from` is cut or drops it; answers whether it left. */
  private deliver(from: NodeId, to: NodeId, run: () => void): boolean {
    const { world } = this;
    if (this.blocked.has(`${from}>${to}`)) return false;
    if (this.lossy() && world.random.chance(this.weather.dropRate)) {
      world.faults.dropped++;
      return false;
    }
    world.queue.push(this.deliverAfter(), { kind: 'run', member: to, incarnation: null, run });
    return true;
  }

  /**
   * Member `id`'s peer link, as the peer transport behaves: messages best effort; a forwarded
   * write or lease request answered over the network, or failed at a timeout (a write's outcome
   * then unknown); a snapshot stream read whole, then delivered, or failed if it cannot be.
   */
  linkFor(id: NodeId, alive: () => boolean): PeerLink {
    const { world, cluster } = this;
    const ask = <T>(to: NodeId, isWrite: boolean, answer: (member: SimMember) => Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        let settled = false;
        const settle = (done: () => void): void => {
          if (settled || !alive()) return;
          settled = true;
          done();
        };
        const failure = new RequestError(isWrite ? 'OUTCOME_UNKNOWN' : 'UNAVAILABLE', `no answer from ${to} within ${PEER_ASK_TIMEOUT_MS} ms`, null);
        world.queue.push(world.now + PEER_ASK_TIMEOUT_MS, { kind: 'run', member: id, incarnation: cluster.incarnations.get(id)!, run: () => settle(() => reject(failure)) });
        this.deliver(id, to, () => {
          let answered: Promise<T>;
          try {
            answered = answer(cluster.members.get(to)!);
          } catch (error) {
            answered = Promise.reject(error);
          }
          answered.then(
            (value) => void this.deliver(to, id, () => settle(() => resolve(value))),
            (error: unknown) => void this.deliver(to, id, () => settle(() => reject(error))),
          );
        });
      });
    return {
      send: (message: Message) => {
        if (!alive()) return;
        world.checker.onSend(id, cluster.members.get(id)!.wal, message);
        this.sendRaft(message);
      },
      forward: (to, entry): Promise<StateResult> => ask(to, true, (member) => member.runtime.proposeForwarded(entry)),
      leaseRequest: (to, request: LeaseRequest): Promise<LeaseStatus[]> =>
        ask(to, false, async (member) => {
          const statuses = await member.runtime.answerLeaseRequest(request);
          for (const status of statuses) if (status.ok) this.renewedAtLeader(status.id);
          return statuses;
        }),
      sendSnapshot: async (message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> => {
        const all: Uint8Array[] = [];
        for await (const chunk of chunks) all.push(chunk);
        if (!alive()) throw new Error('the sender died');
        world.checker.onSend(id, cluster.members.get(id)!.wal, message);
        await new Promise<void>((resolve, reject) => {
          const sent = this.deliver(id, message.to, () => {
            // The message first, then each chunk a network delay later: staging takes time.
            const chunkArrives = (): Promise<void> => new Promise<void>((arrived) => world.queue.push(this.deliverAfter(), { kind: 'run', member: message.to, incarnation: null, run: arrived }));
            const stream = async function* (): AsyncIterable<Uint8Array> {
              for (const chunk of all) {
                await chunkArrives();
                yield chunk;
              }
            };
            cluster.members.get(message.to)!.runtime.receiveSnapshot(message, stream()).catch(() => undefined);
            resolve();
          });
          if (!sent) reject(new Error(`the snapshot stream to ${message.to} was cut`));
          // Delivered to a member that was down, or not at all: the sender gives up at the timeout.
          world.queue.push(world.now + PEER_ASK_TIMEOUT_MS, { kind: 'run', member: id, incarnation: null, run: () => reject(new Error(`the snapshot stream to ${message.to} went unanswered`)) });
        });
      },
    };
  }

  sendToMember(clientId: number, member: NodeId, request: ClientRequest): void {
    const { world } = this;
    if (world.options.trace) world.trace(`t=${world.now} c${clientId} → ${member} ${JSON.stringify(request)}`);
    if (this.lossy() && world.random.chance(this.weather.dropRate)) return;
    world.queue.push(this.deliverAfter(), { kind: 'request', member, request });
  }

  sendToClient(from: NodeId, clientId: number, reply: ClientReply): void {
    const { world } = this;
    if (world.options.trace) world.trace(`t=${world.now} ${from} → c${clientId} ${JSON.stringify(reply)}`);
    if (this.lossy() && world.random.chance(this.weather.dropRate)) return;
    world.queue.push(this.deliverAfter(), { kind: 'reply', clientId, reply });
  }
}
