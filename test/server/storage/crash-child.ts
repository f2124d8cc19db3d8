/**
 * The process the crash test kills (crash.test.ts): a member's storage path for real — the WAL
 * on the real file system and the state store on RocksDB. At start it recovers (WAL, state
 * store, replay of the log from the store's applied index) and reports what it found on one
 * line; then, as the member runtime does, it appends, syncs on the thread pool (syncAsync),
 * reports "ack <lastIndex>" (only after the fdatasync), writes a commit-only hard state without
 * an fdatasync, prepares the next segment ahead off the loop, applies, and persists the state
 * store, until it is killed.
 *
 * Must never: report an ack before the fdatasync returned; exit on its own.
 */

import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { NodeFileSystem } from '../../../server/storage/file-system.js';
import { RocksKvEngine } from '../../../server/storage/rocks-kv.js';
import { Wal } from '../../../server/storage/wal/wal.js';
import { decodeEntry } from '../../../server/state/codec.js';
import { StateMachine } from '../../../server/state/state-machine.js';
import { StateStore } from '../../../server/state/state-store.js';
import { encodeFull } from '../../../server/state/store-format.js';
import type { Entry } from '../../../server/raft/types.js';
import { commandAt, entryDataAt, timeAt } from './crash-workload.js';

const directory = process.argv[2]!;
const seed = Number(process.argv[3] ?? 1);
const CONF = { voters: ['crash'] };

const warnings: string[] = [];
const engine = await RocksKvEngine.open(join(directory, 'state'));
const store = await StateStore.open(engine);
const applied = store.machine.appliedIndex;
const { wal, log } = Wal.open(new NodeFileSystem(), join(directory, 'wal'), {
  segmentBytes: 64 * 1024,
  keepFrom: applied + 1,
  logger: { warn: (fields) => void warnings.push(String(fields['reason'])) },
});

// Every entry kept must be exactly what was written for its index: no partial or foreign record.
let badEntries = 0;
for (const entry of log.entries) if (entry.term !== 1 || !isDeepStrictEqual(entry.data, entryDataAt(entry.index))) badEntries += 1;
const missing = log.entries.length === 0 ? log.lastIndex > applied : log.entries[0]!.index !== applied + 1;
for (const entry of log.entries) store.machine.apply({ index: entry.index, ...decodeEntry(entry.data) });

const fresh = new StateMachine();
for (let index = 1; index <= log.lastIndex; index++) fresh.apply({ index, timeMs: timeAt(index), command: commandAt(index) });
const same = isDeepStrictEqual(encodeFull(fresh), encodeFull(store.machine));

process.stdout.write(`${JSON.stringify({ event: 'recovered', lastIndex: log.lastIndex, applied, replayed: log.entries.length, badEntries, missing, same, warnings, segments: wal.segmentCount })}\n`);

// A small seeded generator (xorshift): batch sizes vary with the seed, never with the clock.
let state = seed >>> 0 || 1;
const next = (): number => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 0x1_0000_0000;
};

let lastIndex = log.lastIndex;
for (;;) {
  const batch: Entry[] = [];
  const size = 1 + Math.floor(next() * 20);
  for (let i = 0; i < size; i++) {
    lastIndex += 1;
    batch.push({ index: lastIndex, term: 1, type: 'normal', data: entryDataAt(lastIndex) });
  }
  wal.append(batch);
  wal.setHardState({ term: 1, vote: 'crash', commit: lastIndex - size });
  await wal.syncAsync();
  process.stdout.write(`ack ${lastIndex}\n`);
  // The commit index moving alone: written, not synced (the next sync, or a cut, covers it).
  wal.setHardState({ term: 1, vote: 'crash', commit: lastIndex });
  wal.write();
  if (wal.wantsSpare) void wal.prepareSpare().catch(() => undefined);
  for (const entry of batch) store.machine.apply({ index: entry.index, ...decodeEntry(entry.data) });
  if (next() < 0.1) {
    // Now and then the store's state becomes durable and the log below it can go (Low-Water Mark).
    await store.persist({ sync: true });
    const mark = store.machine.appliedIndex;
    wal.compact({ index: mark, term: 1, conf: CONF });
  } else {
    await store.persist({ sync: false });
  }
}
