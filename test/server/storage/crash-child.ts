/**
 * The process the crash test kills (crash.test.ts): the production member runtime
 * (MemberRuntime) as a single-member cluster over the real WAL on the real file system and the
 * state store on RocksDB (RocksStoreHome), with real timers and clocks. Nothing of the runtime's
 * storage path is copied here: persist, commit, apply, the store's batches, compaction and WAL
 * segment deletion are the runtime's own.
 *
 * At start it opens the storage as wardend does, checks what the WAL kept (every workload entry
 * exactly what was written for its number, numbers consecutive, no hole above the store), starts
 * the runtime, waits until it leads and a linearizable read has gone through (so the log's
 * replay is applied), and reports on one line the highest write the state holds and whether the
 * state equals a fresh replay of writes 1..that (crash-workload.ts). Then it proposes writes
 * highest+1, highest+2, … through `runtime.propose`, a seeded random 1–20 of them in flight, and
 * prints "ack <n>" only when write n's proposal resolved (the runtime answers after the entry is
 * fsynced, committed and applied), until it is killed.
 *
 * Pattern: the production runtime driven through its public seams, as a black box.
 * Must never: print an ack before its proposal resolved; propose a number twice or skip one;
 * exit on its own (a failed write or a fatal storage error exits non-zero, which the test reports).
 */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { MemberRuntime, type PeerLink, type RuntimeLogger } from '../../../server/node/runtime.js';
import { RocksStoreHome } from '../../../server/node/store-home.js';
import type { RandomSource } from '../../../server/raft/types.js';
import { decodeEntry } from '../../../server/state/codec.js';
import { NodeFileSystem } from '../../../server/storage/file-system.js';
import { Wal } from '../../../server/storage/wal/wal.js';
import { freshReplay, highestWriteIn, MACHINE_OPTIONS, sameState, workloadNumberOf, writeAt } from './crash-workload.js';

const directory = process.argv[2]!;
const seed = Number(process.argv[3] ?? 1);
const ID = 'crash';

/** A seeded generator (xorshift32): elections and the pipeline vary with the seed, never with the clock. */
function seeded(start: number): RandomSource {
  let state = start >>> 0 || 1;
  return {
    intBelow(bound: number): number {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return Math.floor(((state >>> 0) / 0x1_0000_0000) * bound);
    },
  };
}

/** Something went wrong that the test must see: said on stderr, and the child exits non-zero. */
function die(what: string): never {
  process.stderr.write(`crash child: ${what}\n`);
  process.exit(1);
}

// ─── the storage, opened as wardend opens it ────────────────────────────────────────────────────

const walWarnings: string[] = [];
const walDirectory = join(directory, 'wal');
const { wal, log: recovered } = Wal.open(new NodeFileSystem(), walDirectory, {
  // Small segments, so cuts and the deletion of compacted segments happen often.
  segmentBytes: 64 * 1024,
  logger: { warn: (fields) => void walWarnings.push(String(fields['reason'])) },
});
const home = await RocksStoreHome.open(join(directory, 'state'), recovered.base?.meta.index ?? null, MACHINE_OPTIONS);

// What the store holds on its own, before the runtime replays the log above it.
const storeApplied = home.store.machine.appliedIndex;
const storeHighest = highestWriteIn(home.store.machine);

// What the log kept: every workload entry exactly writeAt(n), the numbers consecutive. The
// runtime's own entries (no-ops, lease refreshes) are passed over.
let badEntries = 0;
let gaps = 0;
let logFirst: number | null = null;
let logLast: number | null = null;
for (const entry of recovered.entries) {
  if (entry.type !== 'normal' || entry.data.length === 0) continue;
  const { command } = decodeEntry(entry.data);
  if ((command as { op?: unknown }).op === 'leaseRefreshAll') continue;
  const n = workloadNumberOf(command);
  if (n === null || !isDeepStrictEqual(command, writeAt(n))) {
    badEntries += 1;
    continue;
  }
  if (logLast !== null && n !== logLast + 1) gaps += 1;
  logFirst ??= n;
  logLast = n;
}
// The log must reach down to the write after the store's last (else writes between are gone).
const hole = logFirst !== null && logFirst > storeHighest + 1;
// A single member commits its whole durable log once it leads again: the replay must end exactly there.
const expected = Math.max(storeHighest, logLast ?? 0);

// ─── the runtime ────────────────────────────────────────────────────────────────────────────────

let afterTick = (): void => undefined;
const fail = (what: string) => (error: Error) => die(`${what}: ${error.message}`);
const link: PeerLink = {
  send: (message) => {
    throw new Error(`a single member has no peer to send ${message.type} to (${message.to})`);
  },
  forward: (to) => Promise.reject(new Error(`a single member forwards nothing (to ${to})`)),
  sendSnapshot: (message) => Promise.reject(new Error(`a single member streams no snapshot (to ${message.to})`)),
  leaseRequest: (to) => Promise.reject(new Error(`a single member asks no peer about leases (${to})`)),
};
const logger: RuntimeLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: (fields, message) => void process.stderr.write(`${message} ${JSON.stringify(fields)}\n`),
};
const runtime = new MemberRuntime(
  {
    id: ID,
    peers: [ID],
    // A quick election after each restart: 50–100 ms.
    tickMs: 10,
    electionTicks: 5,
    // Small, so the store is made durable, the log compacted and WAL segments deleted often.
    snapshotEvery: 64,
    keepEntries: 32,
    snapshotBytes: 16 * 1024,
  },
  {
    clock: { monotonicMs: () => performance.now(), wallMs: () => Date.now() },
    timers: {
      setInterval: (run, ms) =>
        setInterval(() => {
          run();
          afterTick();
        }, ms),
      clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
      defer: (run) => void setImmediate(run),
    },
    random: seeded(seed),
    wal,
    recovered,
    home,
    link,
    logger,
    onFatal: fail('the runtime stopped'),
  },
);
runtime.start();

// Leading, then a linearizable read: it is served once the leader's own no-op — above every
// entry the log recovered — is committed and applied.
await new Promise<void>((resolve) => {
  afterTick = () => {
    if (runtime.status.role === 'leader') resolve();
  };
});
afterTick = () => undefined;
await runtime.readLinearizable(() => undefined).catch(fail('the first linearizable read failed'));

const highest = highestWriteIn(runtime.machine);
const same = sameState(runtime.machine, freshReplay(highest));
const segmentNumbers = readdirSync(walDirectory)
  .map((name) => /^([0-9a-f]{16})\.wal$/.exec(name))
  .filter((match) => match !== null)
  .map((match) => parseInt(match[1]!, 16));
process.stdout.write(
  `${JSON.stringify({
    event: 'recovered',
    storeApplied,
    storeHighest,
    logBase: recovered.base?.meta.index ?? 0,
    logLastIndex: recovered.lastIndex,
    logFirst,
    logLast,
    badEntries,
    gaps,
    hole,
    expected,
    highest,
    revision: runtime.machine.revision,
    same,
    warnings: walWarnings,
    segments: wal.segmentCount,
    oldestSegment: Math.min(...segmentNumbers),
  })}\n`,
);

// ─── the workload, pipelined ────────────────────────────────────────────────────────────────────

const pipeline = seeded(seed ^ 0x5bd1_e995);
let next = highest + 1;
let inFlight = 0;
let window = 1 + pipeline.intBelow(20);

function fill(): void {
  while (inFlight < window) {
    const n = next++;
    inFlight += 1;
    runtime.propose(writeAt(n)).then((result) => {
      if (!result.ok || result.op !== 'txn' || !result.succeeded) die(`write ${n} was refused: ${JSON.stringify(result)}`);
      process.stdout.write(`ack ${n}\n`);
      inFlight -= 1;
      window = 1 + pipeline.intBelow(20);
      fill();
    }, fail(`write ${n} failed`));
  }
}
fill();
