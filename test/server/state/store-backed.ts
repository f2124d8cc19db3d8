/**
 * A state machine kept in the in-memory KvEngine twin, driven synchronously, for running the
 * state machine's tests against a store-backed instance: every applied entry is persisted as
 * its own batch (synced or not), and `restart` rebuilds the machine from nothing but the
 * store's bytes — after a crash that may lose the unsynced batches, replaying the log from the
 * store's applied index, as a member does at start.
 *
 * Must never: hand the rebuilt machine anything but the store's bytes and the log.
 */

import { MemoryKvEngine } from '../../../server/state/memory-kv.js';
import { StateMachine, type StateEntry, type StateMachineOptions } from '../../../server/state/state-machine.js';
import { isDeepStrictEqual } from 'node:util';
import { encodeChanges, encodeFull, imageFromEntries } from '../../../server/state/store-format.js';

export class StoreBacked {
  readonly kv = new MemoryKvEngine();
  sm: StateMachine;
  /** Every entry applied, so a restart can replay what the store lost. */
  private readonly log: StateEntry[] = [];
  restarts = 0;
  replayed = 0;

  constructor(private readonly options: StateMachineOptions) {
    this.sm = new StateMachine({ ...options, trackChanges: true });
    this.persist(true); // a new member's store begins with its meta record
  }

  apply(entry: StateEntry, sync = true): ReturnType<StateMachine['apply']> {
    this.log.push(entry);
    const applied = this.sm.apply(entry);
    this.persist(sync);
    return applied;
  }

  /** Write what changed (for callers that change the namespace directly). */
  persist(sync = true): void {
    this.kv.writeNow(encodeChanges(this.sm, this.sm.takeChanges()), { sync });
  }

  /** Rebuild from the store alone; with `crash`, first lose the unsynced batches and replay the log. */
  restart(crash = false): void {
    this.checkCanonical('before a restart');
    if (crash) this.kv.crash();
    const image = imageFromEntries(this.kv.entries());
    const sm = image === null ? new StateMachine({ ...this.options, trackChanges: true }) : StateMachine.restore(image, { ...this.options, trackChanges: true });
    for (const entry of this.log.slice(sm.appliedIndex)) {
      sm.apply(entry);
      this.replayed += 1;
    }
    this.sm = sm;
    this.persist(true);
    this.checkCanonical(crash ? 'after a crash and replay' : 'after a restart');
    this.restarts += 1;
  }

  /** The store holds exactly what a whole write of the machine would. */
  checkCanonical(when: string): void {
    const whole = new MemoryKvEngine();
    whole.writeNow(encodeFull(this.sm), { sync: true });
    const expected = whole.entries().map(([key, value]) => [hex(key), hex(value)]);
    const actual = this.kv.entries().map(([key, value]) => [hex(key), hex(value)]);
    if (isDeepStrictEqual(actual, expected)) return;
    const extra = actual.filter(([key]) => !expected.some(([k]) => k === key)).map(([key]) => key);
    const missing = expected.filter(([key]) => !actual.some(([k]) => k === key)).map(([key]) => key);
    throw new Error(`${when}: the store differs from a whole write of the machine (extra keys ${extra.join(' ')}; missing ${missing.join(' ')}; or values differ)`);
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
