/**
 * The crash test's workload, the same in the child that is killed and in the check that replays
 * it: entry i always carries the same command at the same time, so "the state equals a fresh
 * replay" means: equal to a new state machine fed commands 1..lastIndex.
 *
 * Must never: depend on anything but the index.
 */

import { encodeEntry } from '../../../server/state/codec.js';
import type { StateCommand } from '../../../server/state/state-machine.js';

export function commandAt(index: number): StateCommand {
  if (index % 500 === 0) return { op: 'compact', revision: Math.max(0, index - 600) };
  if (index % 10 === 0) return { op: 'create', path: '/q/job-', value: new TextEncoder().encode(`job ${index}`), sequential: true, parents: true };
  if (index % 17 === 0) return { op: 'delete', path: `/k/${Math.floor(index / 17) % 64}` };
  return { op: 'put', path: `/k/${index % 64}`, value: new TextEncoder().encode(`v${index}`) };
}

export function timeAt(index: number): number {
  return index * 10;
}

export function entryDataAt(index: number): Uint8Array {
  return encodeEntry({ timeMs: timeAt(index), command: commandAt(index) });
}
