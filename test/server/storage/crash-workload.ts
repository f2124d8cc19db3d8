/**
 * The crash test's workload, the same in the child that is killed and in the checks it makes
 * after each restart. It is self-describing: write n (1, 2, 3, …) is one transaction, at one
 * revision, that puts n into `/last` and makes one change of its own (a put, a delete or a
 * sequential create) carrying n. The runtime adds its own entries around the writes (a new
 * leader's no-op, its lease refresh), which take log indices but no revision; so the log index
 * of write n is unknown, but the namespace after writes 1..N is a pure function of N: equal to a
 * fresh state machine fed writeAt(1..N), with revision N. A write lost or applied twice changes
 * it (a version, a revision or a sequential name moves).
 *
 * snapshot.test.ts fills stores with the older, index-keyed form (commandAt, timeAt): entry i
 * always carries the same command at the same time.
 *
 * Pattern: a deterministic, self-describing workload — the expected state is recomputed from n
 * alone, never read back from what the child wrote.
 * Must never: depend on anything but n (or i, for the index-keyed form): not the clock.
 */

import { isDeepStrictEqual } from 'node:util';
import type { StateCommand, StateMachineOptions } from '../../../server/state/state-machine.js';
import { StateMachine } from '../../../server/state/state-machine.js';
import { encodeFull, META_KEY } from '../../../server/state/store-format.js';
import type { TxnCommand, TxnOp } from '../../../server/state/types.js';

/**
 * The state machine's options, the same in the child's store and in the fresh replay: history is
 * kept for HISTORY_REVISIONS revisions and compacted by itself past twice that, as wardend does
 * with its own figure, so the store's compaction is exercised across crashes.
 */
export const MACHINE_OPTIONS: StateMachineOptions = { historyRevisions: 200 };

const LAST = '/last';
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Entry i of the index-keyed workload (snapshot.test.ts): puts, deletes, sequential creates, and a compaction every 500. */
export function commandAt(index: number): StateCommand {
  if (index % 500 === 0) return { op: 'compact', revision: Math.max(0, index - 600) };
  if (index % 10 === 0) return { op: 'create', path: '/q/job-', value: utf8.encode(`job ${index}`), sequential: true, parents: true };
  if (index % 17 === 0) return { op: 'delete', path: `/k/${Math.floor(index / 17) % 64}` };
  return { op: 'put', path: `/k/${index % 64}`, value: utf8.encode(`v${index}`) };
}

/** The proposer's clock for entry i of the index-keyed workload. */
export function timeAt(index: number): number {
  return index * 10;
}

/** Write n's own change: every node it touches exists when it runs (the child refuses a failed write). */
function changeAt(n: number): TxnOp {
  if (n % 10 === 0) return { op: 'create', path: '/q/job-', value: utf8.encode(`job ${n}`), sequential: true, parents: true };
  // /k/j was put at the last n ≡ j (mod 64) before, and only one delete in 1,088 writes names it.
  if (n % 17 === 0) return { op: 'delete', path: `/k/${Math.floor(n / 17) % 64}` };
  return { op: 'put', path: `/k/${n % 64}`, value: utf8.encode(`v${n}`) };
}

/** Write n: `/last` := n and its own change, at one revision. */
export function writeAt(n: number): TxnCommand {
  return { op: 'txn', compare: [], success: [{ op: 'put', path: LAST, value: utf8.encode(String(n)) }, changeAt(n)], failure: [] };
}

/** The workload number a logged command carries, or null if it is not a workload write. */
export function workloadNumberOf(command: unknown): number | null {
  if (typeof command !== 'object' || command === null || (command as { op?: unknown }).op !== 'txn') return null;
  const first = (command as { success?: unknown }).success;
  if (!Array.isArray(first) || first.length === 0) return null;
  const put = first[0] as { op?: unknown; path?: unknown; value?: unknown };
  if (put.op !== 'put' || put.path !== LAST || !(put.value instanceof Uint8Array)) return null;
  const n = Number(utf8Decoder.decode(put.value));
  return Number.isSafeInteger(n) && n >= 1 ? n : null;
}

/** The highest write a state holds (0 if none): what `/last` says. */
export function highestWriteIn(machine: StateMachine): number {
  const read = machine.namespace.get(LAST);
  return read.ok && read.op === 'get' ? Number(utf8Decoder.decode(read.node.value)) : 0;
}

/** A fresh state machine fed writes 1..highest, nothing else. */
export function freshReplay(highest: number): StateMachine {
  const fresh = new StateMachine(MACHINE_OPTIONS);
  for (let n = 1; n <= highest; n++) fresh.apply({ index: n, timeMs: n * 10, command: writeAt(n) });
  return fresh;
}

/**
 * Whether two states hold the same namespace, leases and sessions, byte for byte as a store
 * would write them, and the same revision and compaction point. The rest of the meta record (the
 * applied index, the log time, the lease epoch) moves with the runtime's own entries, not the
 * workload's.
 */
export function sameState(a: StateMachine, b: StateMachine): boolean {
  const records = (machine: StateMachine): unknown[] => encodeFull(machine).filter((write) => !(write.type === 'put' && isDeepStrictEqual(write.key, META_KEY)));
  return a.revision === b.revision && a.namespace.compactRevision === b.namespace.compactRevision && isDeepStrictEqual(records(a), records(b));
}
