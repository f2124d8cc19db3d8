/**
 * The seed's workload: the clients (register operations, recorded in the shared history
 * format), the lease holders (session locks) and the watchers of the whole namespace, drawn and
 * started once the members are up, addressed by id on the simulated network, and stopped at the
 * heal. What they exercised goes into the run's coverage.
 *
 * Pattern: a roster of simulated actors; clients are numbered from 1 and lease holders from
 * HOLDER_ID_BASE, so one id routes a reply or a wake to its actor.
 *
 * Must never: route a reply or a wake to an actor other than the one its id names, or draw its
 * actors in another order (every later draw of the seed would shift).
 */

import type { Operation } from '../linearizability/history.js';
import { SimClient, type ClientReply } from './client.js';
import { SimLeaseHolder } from './lease-holder.js';
import type { SimNetwork } from './sim-network.js';
import { HOLDER_ID_BASE, LEASE_ID_BASE, type SimWorld } from './sim-world.js';
import type { Coverage } from './simulation.js';
import { SimWatcher, type RevisionTruth } from './watcher.js';

export class SimWorkload {
  readonly clients: SimClient[] = [];
  /** Lease holders, by id (numbered from HOLDER_ID_BASE, beside the clients on the same network). */
  readonly holders = new Map<number, SimLeaseHolder>();
  readonly watchers: SimWatcher[] = [];
  readonly history: Operation[] = [];

  constructor(
    private readonly world: SimWorld,
    private readonly network: SimNetwork,
    private readonly truth: RevisionTruth,
  ) {}

  start(): void {
    const { world, network } = this;
    const { random, queue } = world;
    const clientCount = random.between(2, 6);
    const keys = Array.from({ length: random.between(1, 4) }, (_, i) => `k${i}`);
    for (let c = 1; c <= clientCount; c++) {
      const client = new SimClient(
        c,
        world.nodeIds,
        {
          keys,
          thinkMsMax: random.pick([0, 10, 50]),
          timeoutMs: random.pick([100, 300, 600]),
          abandonAfterAttempts: random.pick([0, 5, 20]),
          abandonMax: 3,
          // Some reads go anywhere, e.g. to a leader that has not committed in its term yet.
          readAnywhere: random.pick([0, 0.3]),
        },
        random.fork(),
        {
          now: () => world.now,
          send: (clientId, member, request) => network.sendToMember(clientId, member, request),
          wakeAt: (at, clientId, token) => queue.push(at, { kind: 'client-wake', clientId, token }),
          record: (op) => this.history.push(op),
        },
      );
      this.clients.push(client);
      client.start();
    }
    // Session locks: leases kept alive, each with an ephemeral node; some holders die midway.
    const holderCount = random.pick([0, 1, 2, 3]);
    for (let k = 0; k < holderCount; k++) {
      const id = HOLDER_ID_BASE + k;
      const holder = new SimLeaseHolder(
        id,
        LEASE_ID_BASE + k,
        random.between(1_000, 2_000),
        world.nodeIds,
        random.fork(),
        {
          now: () => world.now,
          send: (holderId, member, request) => network.sendToMember(holderId, member, request),
          wakeAt: (at, holderId, token) => queue.push(at, { kind: 'client-wake', clientId: holderId, token }),
        },
        random.chance(0.5) ? random.between(500, 10_000) : null,
      );
      this.holders.set(id, holder);
      holder.start();
    }
    // Watchers of the whole namespace, from the start of history or from now.
    const watcherCount = random.pick([0, 1, 2]);
    for (let k = 0; k < watcherCount; k++) {
      const watcher = new SimWatcher(k + 1, world.nodeIds, (from) => random.pick(from), this.truth, {
        now: () => world.now,
        connect: (w, member, fromRevision) => network.connectWatcher(w, member, fromRevision),
        wakeAt: (at, run) => queue.push(at, { kind: 'call', run }),
        trace: (line) => world.trace(line),
      });
      this.watchers.push(watcher);
      watcher.start(random.chance(0.5));
    }
  }

  onReply(id: number, reply: ClientReply): void {
    if (id >= HOLDER_ID_BASE) this.holders.get(id)!.onReply(reply);
    else this.clients[id - 1]!.onReply(reply);
  }

  onWake(id: number, token: number): void {
    if (id >= HOLDER_ID_BASE) this.holders.get(id)!.onWake(token);
    else this.clients[id - 1]!.onWake(token);
  }

  /** The heal: clients finish their operations; every holder stops, so each lease must then expire within its bound. */
  finish(): void {
    for (const client of this.clients) client.finish();
    for (const holder of this.holders.values()) holder.stop();
  }

  /** Every watcher has received everything up to `revision`. */
  watchersAt(revision: number): boolean {
    return this.watchers.every((w) => w.lastRevision >= revision);
  }

  coverage(): Pick<Coverage, 'unknownOutcomes' | 'leasesExpired' | 'leaseRenewals' | 'watchedRevisions' | 'watchResumes'> {
    return {
      unknownOutcomes: this.history.filter((op) => op.returnTime === null).length,
      leasesExpired: [...this.holders.values()].filter((h) => h.gone).length,
      leaseRenewals: [...this.holders.values()].reduce((sum, h) => sum + h.renewals, 0),
      watchedRevisions: this.watchers.reduce((sum, w) => sum + w.revisionsReceived, 0),
      watchResumes: this.watchers.reduce((sum, w) => sum + w.resumes, 0),
    };
  }
}
