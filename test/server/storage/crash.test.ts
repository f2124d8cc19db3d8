/**
 * The storage crash test, with real processes: a child (crash-child.ts) runs the production
 * member runtime as a single-member cluster over the WAL on the real file system and the state
 * store on RocksDB, proposes self-describing writes (crash-workload.ts) a few at a time, prints
 * "ack <n>" when write n's proposal resolved, and is killed with SIGKILL at random moments (after
 * a seeded random number of acknowledgements, while it goes on writing). After every restart:
 * every acknowledged write is in the state; every workload entry the WAL kept is exactly what was
 * written for its number, the numbers consecutive and reaching down to the store's; the runtime's
 * replay ends exactly at the log's last write; and the state equals a fresh replay of writes 1..n
 * (revision n: none lost, none applied twice). Across the run the log must have been compacted
 * and old segments deleted, and the disk stayed bounded.
 *
 * CRASH_KILLS sets the number of kills (50 by default; `npm run soak:crash` runs 1,000). Every
 * 50 kills the child starts over in a fresh directory: the fresh replay it checks against grows
 * with the writes, and a soak would otherwise slow down with every kill.
 *
 * Pattern: crash-recovery testing against the real runtime as a black box (kill, restart, check).
 * Must never: wait without a bound; sleep to synchronise; leave a process or a folder behind.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const KILLS = Number(process.env['CRASH_KILLS'] ?? 50);
const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const STEP_TIMEOUT_MS = 30_000;

/** The child's recovery report (crash-child.ts). */
interface Recovered {
  readonly event: 'recovered';
  /** The store's applied index and highest write as opened, before the runtime replayed the log. */
  readonly storeApplied: number;
  readonly storeHighest: number;
  /** The log's base (its compaction point) and last index as the WAL recovered them. */
  readonly logBase: number;
  readonly logLastIndex: number;
  /** The first and last workload write the log kept (null: none). */
  readonly logFirst: number | null;
  readonly logLast: number | null;
  /** Workload entries that differ from what was written for their number. */
  readonly badEntries: number;
  /** Places where the log's write numbers do not follow one another. */
  readonly gaps: number;
  /** The log starts above the write after the store's highest. */
  readonly hole: boolean;
  /** The highest write the durable storage holds (store or log), and what the state holds once the runtime replayed the log. */
  readonly expected: number;
  readonly highest: number;
  readonly revision: number;
  /** The state equals a fresh replay of writes 1..highest. */
  readonly same: boolean;
  readonly warnings: string[];
  readonly segments: number;
  readonly oldestSegment: number;
}

const children = new Set<ChildProcess>();
const directory = mkdtempSync(join(tmpdir(), 'warden-crash-'));
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(directory, { recursive: true, force: true });
});

const KILLS_PER_DIRECTORY = 50;

/** Start the child on `data`; resolve with its recovery report, then kill it after `acks` acknowledgements (the highest acknowledged write too). */
function runOnce(data: string, seed: number, acks: number): Promise<{ recovered: Recovered; maxAcked: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, data, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let recovered: Recovered | null = null;
    let maxAcked = 0;
    let seen = 0;
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crash child made no progress in ${STEP_TIMEOUT_MS} ms (seed ${seed}); stderr: ${stderr}`));
    }, STEP_TIMEOUT_MS);
    child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (recovered === null) {
        recovered = JSON.parse(line) as Recovered;
        if (acks === 0) child.kill('SIGKILL');
        return;
      }
      const match = /^ack (\d+)$/.exec(line);
      if (match === null) return;
      maxAcked = Math.max(maxAcked, Number(match[1]));
      if (++seen === acks) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (recovered === null) reject(new Error(`crash child exited (${code ?? signal}) before reporting recovery (seed ${seed}); stderr: ${stderr}`));
      else if (signal !== 'SIGKILL') reject(new Error(`crash child exited on its own (${code}); stderr: ${stderr}`));
      else resolve({ recovered, maxAcked });
    });
  });
}

describe('storage under SIGKILL', () => {
  it(`the runtime keeps every acknowledged write, accepts no partial record and recovers the state of a fresh replay, across ${KILLS} kills`, async () => {
    let acknowledged = 0;
    let acknowledgedInAll = 0;
    let rng = 0x9e3779b9;
    const random = (n: number): number => {
      rng = (Math.imul(rng ^ (rng >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return rng % n;
    };
    let tornTails = 0;
    let maxSegments = 0;
    let compactions = 0;
    let segmentsDeleted = 0;
    let firstSegment = 0;
    for (let kill = 0; kill <= KILLS; kill++) {
      // The last run only recovers and checks; the others are killed after 0–300 acks.
      const acks = kill === KILLS ? 0 : random(301);
      const freshDirectory = kill % KILLS_PER_DIRECTORY === 0 && kill !== KILLS;
      if (freshDirectory) acknowledged = 0;
      const data = join(directory, `run-${Math.floor(Math.min(kill, KILLS - 1) / KILLS_PER_DIRECTORY)}`);
      const { recovered, maxAcked } = await runOnce(data, kill + 1, acks);
      const where = `run ${kill} (seed ${kill + 1})`;
      expect(recovered.highest, `${where}: an acknowledged write is missing`).toBeGreaterThanOrEqual(acknowledged);
      expect(recovered.badEntries, `${where}: a logged write differs from what was written`).toBe(0);
      expect(recovered.gaps, `${where}: the log's writes are not consecutive`).toBe(0);
      expect(recovered.hole, `${where}: the log does not reach down to the store's highest write`).toBe(false);
      expect(recovered.highest, `${where}: the replay did not end at the durable log's last write`).toBe(recovered.expected);
      expect(recovered.revision, `${where}: a write was lost or applied twice (revision ≠ writes)`).toBe(recovered.highest);
      expect(recovered.same, `${where}: the state differs from a fresh replay`).toBe(true);
      tornTails += recovered.warnings.length;
      maxSegments = Math.max(maxSegments, recovered.segments);
      if (recovered.logBase > 0) compactions += 1;
      if (freshDirectory) firstSegment = recovered.oldestSegment;
      else if (recovered.oldestSegment > firstSegment) segmentsDeleted += 1;
      acknowledgedInAll += Math.max(0, maxAcked - acknowledged);
      acknowledged = Math.max(acknowledged, maxAcked);
    }
    expect(acknowledgedInAll).toBeGreaterThan(KILLS * 10);
    // The runtime's compaction ran (the log's base moved) and deleted segments behind it...
    expect(compactions).toBeGreaterThan(0);
    expect(segmentsDeleted).toBeGreaterThan(0);
    // ...so the disk stays bounded: segments of 64 KiB come and go.
    expect(maxSegments).toBeLessThan(40);
    // eslint-disable-next-line no-console -- a figure for the person running the soak
    if (process.env['CRASH_KILLS'] !== undefined) console.info(`crash soak: ${KILLS} kills, ${acknowledgedInAll} writes acknowledged, ${tornTails} torn tails cut`);
  }, 60 * 60_000);
});
