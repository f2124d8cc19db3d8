/**
 * Snapshots this member receives (Low-Water Mark, the receiving side): a leader's stream is
 * staged beside the live store while the update loop goes on; then its message, marked staged
 * (no bytes), is stepped into the core, which installs it in a later Ready (the Ready handler
 * logs the new base, durably, and this module swaps the store in) or declines it (it already
 * held that far: the staged copy is thrown away at the end of the turn). One stream stages at a
 * time: the next waits until the core has installed or declined this one.
 *
 * Must never: let a second stream replace a stage the core may install (a replaced stage under
 * a logged base left a member that could not start); install a stage that is not the one the
 * core's snapshot names; leave a declined stage for a restart's recovery to finish; mark a
 * message staged before its stream is staged whole.
 */

import type { Snapshot, SnapshotMessage, SnapshotMeta } from '../raft/types.js';
import type { RuntimeLogger, StoreHome } from './runtime.js';

/**
 * The leader's message as the core is to see it: its state not as bytes but staged here (the
 * core refuses to install a snapshot with neither). A fresh snapshot, so no `staged` claim from
 * the wire is carried through.
 */
function asStaged(message: SnapshotMessage): SnapshotMessage {
  return { ...message, snapshot: { meta: message.snapshot.meta, data: null, staged: true } };
}

export interface SnapshotReceiverDeps {
  readonly home: Pick<StoreHome, 'receive' | 'discardStaged' | 'stagedMeta' | 'installStaged'>;
  readonly logger: RuntimeLogger;
  /** Run `input` in the update loop. */
  enqueue(input: () => void): void;
  /** Step a message into the core (called from the update loop). */
  step(message: SnapshotMessage): void;
  /** Whether the member is stopping (nothing will install a stage then). */
  stopped(): boolean;
  /** Planted bug (the simulator's): step the message before the stream is staged whole. */
  readonly stepBeforeStaged?: boolean;
}

export class SnapshotReceiver {
  /** Snapshots installed since start (for /status). */
  installed = 0;
  private receiving: Promise<void> = Promise.resolve();
  /** A staged snapshot was stepped into the core this turn; discarded unless the core installs it. */
  private stepped = false;
  /** Lets the next stream stage once the stepped one is installed or declined. */
  private settled: (() => void) | null = null;

  constructor(private readonly deps: SnapshotReceiverDeps) {}

  /** A leader's stream: staged, then stepped into the core. Rejects if it did not arrive whole (nothing is left staged). */
  receive(message: SnapshotMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const received = this.receiving.then(async () => {
      if (this.deps.stepBeforeStaged === true) this.deps.enqueue(() => this.deps.step(asStaged(message)));
      const base = await this.deps.home.receive(chunks);
      const meta = message.snapshot.meta;
      if (base.index !== meta.index || base.term !== meta.term) throw new Error(`the stream holds ${base.index}/${base.term}, the message says ${meta.index}/${meta.term}`);
      await new Promise<void>((resolve) => {
        this.settled = resolve;
        this.deps.enqueue(() => {
          this.deps.step(asStaged(message));
          this.stepped = true;
        });
        if (this.deps.stopped()) this.settle();
      });
    });
    this.receiving = received.catch((error: Error) => {
      this.deps.logger.warn({ event: 'snapshot_receive_failed', from: message.from, error: error.message }, 'a snapshot from the leader did not arrive whole; the leader sends another');
      return this.deps.home.discardStaged().catch(() => undefined);
    });
    return received;
  }

  /** Before the core's snapshot is logged: it must be the one staged (a failure here leaves a member that restarts). */
  check(snapshot: Snapshot): void {
    const wanted = snapshot.meta;
    // Bytes in the message would be ignored here: this member installs only what it staged.
    if (snapshot.staged !== true) throw new Error(`runtime: the snapshot to install (${wanted.index}/${wanted.term}) is not marked staged; this member installs only a stage`);
    const staged = this.deps.home.stagedMeta();
    if (staged === null || staged.index !== wanted.index || staged.term !== wanted.term) {
      throw new Error(`runtime: the snapshot to install (${wanted.index}/${wanted.term}) is not the one staged (${staged === null ? 'none' : `${staged.index}/${staged.term}`})`);
    }
  }

  /** Once the new base is durable in the log: swap the staged store in. */
  async install(meta: SnapshotMeta): Promise<void> {
    await this.deps.home.installStaged();
    this.stepped = false;
    this.settle();
    this.installed += 1;
    this.deps.logger.info({ event: 'snapshot_installed', index: meta.index, term: meta.term }, `installed the leader's snapshot at ${meta.index}`);
  }

  /** The end of a turn: a stage stepped into the core and not installed was declined. */
  async afterTurn(): Promise<void> {
    if (!this.stepped) return;
    this.stepped = false;
    await this.deps.home.discardStaged();
    this.settle();
  }

  /** Let the next stream stage (the stepped one is settled, or the member stops). */
  settle(): void {
    const settled = this.settled;
    this.settled = null;
    settled?.();
  }
}
