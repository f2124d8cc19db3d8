/**
 * The state machine kept in a KvEngine (RocksDB in a running member): open loads the whole
 * store and rebuilds the in-memory state machine from it; persist writes what changed since the
 * last persist, with the meta record holding the applied index, as one atomic batch. Apply
 * runs in memory; the store is written once per applied group, so after any crash it holds
 * the committed log applied exactly up to its applied index, and the runtime replays the log
 * from there (the log is kept from the store's durable applied index on).
 *
 * Must never: let two batches land out of order (each write waits for the one before it); go on
 * after a failed write (every later persist fails with the same error: the member must stop).
 */

import type { KvEngine } from './kv-engine.js';
import { StateMachine, type StateMachineOptions } from './state-machine.js';
import { encodeChanges, imageFromEntries } from './store-format.js';

const ALL = { gte: new Uint8Array([0x00]), lt: new Uint8Array([0xff]) };

export class StateStore {
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    readonly engine: KvEngine,
    readonly machine: StateMachine,
  ) {}

  /** Load the state machine the engine holds (an empty one for an empty engine). */
  static async open(engine: KvEngine, options: Omit<StateMachineOptions, 'trackChanges'> = {}): Promise<StateStore> {
    const entries: (readonly [Uint8Array, Uint8Array])[] = [];
    for await (const entry of engine.scan(ALL)) entries.push(entry);
    const image = imageFromEntries(entries);
    const machineOptions = { ...options, trackChanges: true };
    const machine = image === null ? new StateMachine(machineOptions) : StateMachine.restore(image, machineOptions);
    return new StateStore(engine, machine);
  }

  /**
   * Write everything applied since the last persist as one batch. Resolves when the batch is in
   * the engine (and durable, with sync). Batches land in call order.
   */
  persist(options: { sync: boolean }): Promise<void> {
    const batch = encodeChanges(this.machine, this.machine.takeChanges());
    this.tail = this.tail.then(() => this.engine.write(batch, options));
    return this.tail;
  }
}
