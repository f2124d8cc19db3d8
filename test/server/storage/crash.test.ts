/**
 * The storage crash test, with real processes: a child (crash-child.ts) appends to the WAL on
 * the real file system, applies to the state store on RocksDB, and is killed with SIGKILL at
 * random moments (after a seeded random number of acknowledged batches, while it goes on
 * writing). After every restart: every acknowledged entry is present, every kept entry is
 * exactly what was written for its index (no partial record accepted), the log has no hole
 * above the store's applied index, and the state equals a fresh replay of the log.
 *
 * CRASH_KILLS sets the number of kills (50 by default; `npm run soak:crash` runs 1,000). Every
 * 50 kills the child starts over in a fresh directory: the fresh replay it checks against grows
 * with the log, and a soak would otherwise slow down with every kill.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
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

interface Recovered {
  readonly event: 'recovered';
  readonly lastIndex: number;
  readonly applied: number;
  readonly replayed: number;
  readonly badEntries: number;
  readonly missing: boolean;
  readonly same: boolean;
  readonly warnings: string[];
  readonly segments: number;
}

const children = new Set<ChildProcess>();
const directory = mkdtempSync(join(tmpdir(), 'warden-crash-'));
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(directory, { recursive: true, force: true });
});

const KILLS_PER_DIRECTORY = 50;

/** Start the child on `data`; resolve with its recovery report, then kill it after `acks` acknowledgements. */
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
  it(`keeps every acknowledged entry, accepts no partial record and recovers the state of a fresh replay, across ${KILLS} kills`, async () => {
    let acknowledged = 0;
    let acknowledgedInAll = 0;
    let rng = 0x9e3779b9;
    const random = (n: number): number => {
      rng = (Math.imul(rng ^ (rng >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return rng % n;
    };
    let tornTails = 0;
    let maxSegments = 0;
    for (let kill = 0; kill <= KILLS; kill++) {
      // The last run only recovers and checks; the others are killed after 0–300 acks.
      const acks = kill === KILLS ? 0 : random(301);
      if (kill > 0 && kill % KILLS_PER_DIRECTORY === 0 && kill !== KILLS) acknowledged = 0;
      const data = join(directory, `run-${Math.floor(Math.min(kill, KILLS - 1) / KILLS_PER_DIRECTORY)}`);
      const { recovered, maxAcked } = await runOnce(data, kill + 1, acks);
      const where = `run ${kill} (seed ${kill + 1})`;
      expect(recovered.lastIndex, `${where}: an acknowledged entry is missing`).toBeGreaterThanOrEqual(acknowledged);
      expect(recovered.badEntries, `${where}: an entry differs from what was written`).toBe(0);
      expect(recovered.missing, `${where}: the log has a hole above the store's applied index`).toBe(false);
      expect(recovered.same, `${where}: the state differs from a fresh replay`).toBe(true);
      tornTails += recovered.warnings.length;
      maxSegments = Math.max(maxSegments, recovered.segments);
      acknowledgedInAll += Math.max(0, maxAcked - acknowledged);
      acknowledged = Math.max(acknowledged, maxAcked);
    }
    expect(acknowledgedInAll).toBeGreaterThan(KILLS * 10);
    // Compaction must keep the disk bounded: segments of 64 KiB come and go.
    expect(maxSegments).toBeLessThan(40);
    // eslint-disable-next-line no-console -- a figure for the person running the soak
    if (process.env['CRASH_KILLS'] !== undefined) console.info(`crash soak: ${KILLS} kills, ${acknowledgedInAll} entries acknowledged, ${tornTails} torn tails cut`);
  }, 60 * 60_000);
});
