/**
 * Path tracing for `npm run bench:path`: a timestamp at each named step a request takes through
 * this member (a client frame read, a write forwarded, an Append received, a sync done, an entry
 * applied, an answer sent), so the bench can line one write's steps up across the three members
 * and the client and say where each microsecond of the follower path goes — measured, not guessed.
 * Times are process.hrtime (CLOCK_MONOTONIC), one clock for every process on the machine.
 *
 * Off unless the environment names a directory in TRACE_WARDEN_PATHS; off, a step costs one
 * boolean test. On, each step is three numbers appended to a preallocated array, and the
 * process writes its steps to <dir>/<pid>.trace as it exits.
 *
 * Must never: change what the member does, or hold more than STEPS_MAX steps (later ones are
 * dropped, and the file says how many).
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The steps a trace may hold: a few seconds of a busy member, ~50 MB at most. */
const STEPS_MAX = 2_000_000;

/** The steps, by number: a trace file holds the numbers, the bench reads the names from here. */
export const PATH_STEPS = [
  'client.frame', // a client's request frame read (client port)
  'client.answer', // an answer frame handed to the client's socket
  'core.proposed', // the core took a proposal (key: its index)
  'core.refused', // the core refused a proposal (this member does not lead)
  'fwd.sent', // a follower sent a write to the leader (key: forward id)
  'fwd.recv', // the leader read a forwarded write (key: forward id)
  'fwd.answered', // the leader sent a forwarded write's answer (key: forward id)
  'fwd.answer.recv', // the follower read the leader's answer (key: forward id)
  'append.sent', // an Append carrying entries sent (key: its last index)
  'append.recv', // an Append carrying entries read (key: its last index)
  'commit.recv', // an Append or Heartbeat read that moves this member's known commit (key: commit index)
  'ack.sent', // an AppendResp sent (key: the index acknowledged)
  'ack.recv', // an AppendResp read (key: the index acknowledged)
  'synced', // the WAL sync of a Ready with entries done (key: its last index)
  'applied', // an entry applied (key: its index)
  'turn', // a turn of the update loop begins
] as const;

export type PathStep = (typeof PATH_STEPS)[number];

// Not WARDEN*: wardend takes every variable starting so as a flag (yargs .env), and refuses unknown ones.
const directory = process.env.TRACE_WARDEN_PATHS;

/** True when this process traces its paths (the callers skip even computing a key otherwise). */
export const tracing = directory !== undefined && directory.length > 0;

let steps: Float64Array | null = null;
let count = 0;
let dropped = 0;
const stepNumber = new Map<string, number>(PATH_STEPS.map((name, i) => [name, i]));

/** Note that `step` happened now, for `key` (an index, a forward id; 0 when it has none). */
export function tracePath(step: PathStep, key = 0): void {
  if (!tracing) return;
  if (steps === null) {
    steps = new Float64Array(STEPS_MAX * 3);
    process.on('exit', writeTrace);
  }
  if (count >= STEPS_MAX) {
    dropped += 1;
    return;
  }
  const at = count * 3;
  steps[at] = stepNumber.get(step)!;
  steps[at + 1] = key;
  steps[at + 2] = Number(process.hrtime.bigint());
  count += 1;
}

/** One line per step: "step key ns", after a first line naming the steps. */
function writeTrace(): void {
  if (steps === null || directory === undefined) return;
  const lines: string[] = [JSON.stringify({ steps: PATH_STEPS, dropped })];
  for (let i = 0; i < count; i++) lines.push(`${steps[i * 3]} ${steps[i * 3 + 1]} ${steps[i * 3 + 2]}`);
  try {
    writeFileSync(join(directory, `${process.pid}.trace`), `${lines.join('\n')}\n`);
  } catch {
    // A bench's directory gone: nothing to report to.
  }
}
