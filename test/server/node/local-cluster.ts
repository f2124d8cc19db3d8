/**
 * Members of a cluster in one process, for the runtime's tests: each a real MemberRuntime over
 * the real WAL (on the in-memory file system) and a state store (on the in-memory engine),
 * linked by an in-memory network that delivers after the current event. Time moves only when
 * the test ticks; crashes keep exactly what each member's disks made durable.
 *
 * Must never: wait without a bound; read a real clock.
 */

import type { Message, NodeId } from '../../../server/raft/types.js';
import { MemberRuntime, type PeerLink, type RuntimeLogger, type RuntimeTimers } from '../../../server/node/runtime.js';
import { MemoryStoreHome } from '../../../server/node/store-home.js';
import { MemoryKvEngine } from '../../../server/state/memory-kv.js';
import { MemoryFileSystem } from '../../../server/storage/memory-file-system.js';
import { Wal } from '../../../server/storage/wal/wal.js';

const quiet: RuntimeLogger = { info() {}, warn() {}, error() {} };

interface Disks {
  readonly fs: MemoryFileSystem;
  readonly engine: MemoryKvEngine;
}

export class LocalCluster {
  readonly runtimes = new Map<NodeId, MemberRuntime>();
  private readonly disks = new Map<NodeId, Disks>();
  private readonly tickers = new Map<NodeId, () => void>();
  private readonly down = new Set<NodeId>();
  /** Members cut off from the others: running, but every message to or from them is lost. */
  private readonly cut = new Set<NodeId>();
  /** Errors each member's runtime reported as fatal (its storage failed). */
  readonly fatal = new Map<NodeId, Error>();
  private wallMs = 1_000_000;
  private seed = 7;

  constructor(
    readonly ids: readonly NodeId[],
    private readonly options: {
      snapshotEvery?: number;
      keepEntries?: number;
      leaseReads?: { driftPercent: number };
      beforeInstall?: (id: NodeId, fs: MemoryFileSystem) => void;
      /** Deliver every snapshot stream twice, the second starting at once (a leader that gave up on the first). */
      snapshotTwice?: boolean;
      /** Node changes applied per turn before the runtime yields. */
      turnChangesMax?: number;
      snapshotBytes?: number;
    } = {},
  ) {}

  async start(): Promise<void> {
    for (const id of this.ids) {
      this.disks.set(id, { fs: new MemoryFileSystem(), engine: new MemoryKvEngine() });
      await this.boot(id);
    }
  }

  runtime(id: NodeId): MemberRuntime {
    const runtime = this.runtimes.get(id);
    if (runtime === undefined) throw new Error(`${id} is down`);
    return runtime;
  }

  leader(): NodeId | null {
    for (const [id, runtime] of this.runtimes) if (runtime.status.role === 'leader') return id;
    return null;
  }

  followers(): NodeId[] {
    return [...this.runtimes.keys()].filter((id) => id !== this.leader());
  }

  /** One tick on every member that is up, then let the work it caused settle. */
  async tick(): Promise<void> {
    this.wallMs += 100;
    for (const [id, tick] of this.tickers) if (!this.down.has(id)) tick();
    await settle();
  }

  /** Tick until `done` holds; fail after `maxTicks`. */
  async until(done: () => boolean, maxTicks = 300, what = 'the condition'): Promise<void> {
    for (let i = 0; i < maxTicks; i++) {
      if (done()) return;
      await this.tick();
    }
    if (!done()) throw new Error(`${what} did not hold within ${maxTicks} ticks`);
  }

  /** Cut `id` off from every other member (it keeps running), or heal it. */
  isolate(id: NodeId, isolated = true): void {
    if (isolated) this.cut.add(id);
    else this.cut.delete(id);
  }

  /** A power cut: the member stops; its disks keep only what was synced. */
  crash(id: NodeId): void {
    this.runtimes.delete(id);
    this.tickers.delete(id);
    this.down.add(id);
    const disks = this.disks.get(id)!;
    disks.fs.crash();
    disks.engine.crash();
  }

  /** The member's in-memory store engine (to watch its writes). */
  storeEngine(id: NodeId): MemoryKvEngine {
    return this.disks.get(id)!.engine;
  }

  /** The member's in-memory disk, to inject faults (a failing fdatasync). */
  fileSystem(id: NodeId): MemoryFileSystem {
    return this.disks.get(id)!.fs;
  }

  async restart(id: NodeId): Promise<void> {
    this.down.delete(id);
    await this.boot(id);
  }

  private async boot(id: NodeId): Promise<void> {
    const { fs, engine } = this.disks.get(id)!;
    const home = await MemoryStoreHome.open({}, engine);
    const beforeInstall = this.options.beforeInstall;
    if (beforeInstall !== undefined) {
      const installStaged = home.installStaged.bind(home);
      home.installStaged = () => {
        beforeInstall(id, fs);
        return installStaged();
      };
    }
    const { wal, log } = Wal.open(fs, '/wal', { segmentBytes: 16 * 1024, salt: () => 1 });
    const timers: RuntimeTimers = {
      setInterval: (run) => {
        this.tickers.set(id, run);
        return id;
      },
      clearInterval: () => void this.tickers.delete(id),
      defer: (run) => void setImmediate(run),
    };
    let state = this.seed++ * 2654435761;
    const runtime = new MemberRuntime(
      { id, peers: this.ids, electionTicks: 10, heartbeatTicks: 1, ...(this.options.snapshotEvery === undefined ? {} : { snapshotEvery: this.options.snapshotEvery }), ...(this.options.keepEntries === undefined ? {} : { keepEntries: this.options.keepEntries }), ...(this.options.leaseReads === undefined ? {} : { leaseReads: this.options.leaseReads }), ...(this.options.turnChangesMax === undefined ? {} : { turnChangesMax: this.options.turnChangesMax }), ...(this.options.snapshotBytes === undefined ? {} : { snapshotBytes: this.options.snapshotBytes }) },
      {
        clock: { monotonicMs: () => this.wallMs, wallMs: () => this.wallMs },
        timers,
        random: {
          intBelow: (bound) => {
            state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
            return state % bound;
          },
        },
        wal,
        recovered: log,
        home,
        link: this.linkFor(id),
        logger: quiet,
        onFatal: (error) => void this.fatal.set(id, error),
      },
    );
    this.runtimes.set(id, runtime);
    runtime.start();
  }

  private linkFor(from: NodeId): PeerLink {
    return {
      send: (message: Message) => {
        setImmediate(() => {
          if (this.down.has(from) || this.down.has(message.to) || this.cut.has(from) || this.cut.has(message.to)) return;
          this.runtimes.get(message.to)?.step(message);
        });
      },
      sendSnapshot: async (message, chunks) => {
        const all: Uint8Array[] = [];
        for await (const chunk of chunks) all.push(chunk);
        if (this.down.has(from) || this.down.has(message.to)) throw new Error(`${message.to} is unreachable`);
        const target = this.runtimes.get(message.to);
        if (target === undefined) throw new Error(`${message.to} is unreachable`);
        const stream = async function* (): AsyncIterable<Uint8Array> {
          yield* all;
        };
        void target.receiveSnapshot(message, stream()).catch(() => undefined);
        if (this.options.snapshotTwice === true) {
          // The second one arrives slowly: still staging when the first is stepped into the core.
          const slow = async function* (): AsyncIterable<Uint8Array> {
            for (const chunk of all) {
              for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
              yield chunk;
            }
          };
          void target.receiveSnapshot(message, slow()).catch(() => undefined);
        }
      },
      leaseRequest: async (to, request) => {
        const target = this.runtimes.get(to);
        if (target === undefined || this.down.has(to)) throw new Error(`${to} is unreachable`);
        return target.answerLeaseRequest(request);
      },
      forward: (to, entry) => {
        const target = this.runtimes.get(to);
        if (target === undefined || this.down.has(to)) return Promise.reject(new Error(`${to} is unreachable`));
        return target.proposeForwarded(entry);
      },
    };
  }
}

/** Let every deferred turn, delivery and store write that is ready run (bounded). */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
