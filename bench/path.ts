/**
 * `npm run bench:path`: where a write's time goes, step by step, at one request in flight. A
 * local 3-member cluster of real `wardend` processes (fsync on) runs with the path trace on
 * (server/metrics/path-trace.ts: each member notes when a request passes each step, on the
 * machine's one monotonic clock); one client puts 256-byte values over one connection to a
 * follower (and, separately, to the leader), noting when each put left and when its answer came.
 * Each put's steps are then lined up across the members — the follower that holds the client (F),
 * the leader (L), the other follower (G) — and the table gives each step's median and p90 in µs.
 * The steps on the critical path add up to the put's latency; the leader's own sync runs beside
 * the followers' and shows as a line of its own.
 *
 * Flags: --puts N per target (default 2,000), --targets follower,leader (default both).
 *
 * Must never: run in CI; be read as a test; leave members or trace files behind.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '../client/index.js';
import { Cluster } from '../test/integration/cluster.js';

const { values } = parseArgs({ options: { puts: { type: 'string', default: '2000' }, targets: { type: 'string', default: 'follower,leader' } } });
const puts = Number(values.puts);
const targets = values.targets.split(',') as ('follower' | 'leader')[];

interface Step {
  readonly step: string;
  readonly key: number;
  readonly ns: number;
}

/** A member's trace file: its steps in the order it noted them. */
function readTrace(dir: string, pid: number): Step[] {
  const [head, ...lines] = readFileSync(join(dir, `${pid}.trace`), 'utf8').trim().split('\n');
  const { steps: names, dropped } = JSON.parse(head!) as { steps: string[]; dropped: number };
  if (dropped > 0) throw new Error(`member ${pid} dropped ${dropped} trace steps: run fewer puts`);
  return lines.map((line) => {
    const [step, key, ns] = line.split(' ').map(Number);
    return { step: names[step!]!, key: key!, ns: ns! };
  });
}

/** The first of a member's steps named `step` at or after `fromNs` (and before `untilNs`) whose key passes `keyOk`. */
function first(trace: readonly Step[], step: string, fromNs: number, untilNs: number, keyOk: (key: number) => boolean = () => true): Step | undefined {
  // Traces are in time order: a binary search finds the window's start.
  let lo = 0;
  let hi = trace.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (trace[mid]!.ns < fromNs) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < trace.length && trace[i]!.ns <= untilNs; i++) {
    const s = trace[i]!;
    if (s.step === step && keyOk(s.key)) return s;
  }
  return undefined;
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Each put's steps: [label, ns] in path order, or null when a step is missing (a heartbeat's commit, a retry). */
type Breakdown = Map<string, number[]>;

function lineUp(target: 'follower' | 'leader', windows: readonly [number, number][], f: Step[], l: Step[], g: Step[], h: Step[]): { breakdown: Breakdown; lined: number } {
  const breakdown: Breakdown = new Map();
  const add = (label: string, ns: number): void => {
    let list = breakdown.get(label);
    if (list === undefined) breakdown.set(label, (list = []));
    list.push(ns / 1_000);
  };
  let lined = 0;
  // F is the member the client talks to (the leader itself when target is leader); H is the
  // other follower when the client talks to the leader.
  for (const [sent, answered] of windows) {
    const frame = first(f, 'client.frame', sent, answered);
    if (frame === undefined) continue;
    let proposed: Step | undefined;
    let fwdSent: Step | undefined;
    let fwdRecv: Step | undefined;
    if (target === 'follower') {
      fwdSent = first(f, 'fwd.sent', frame.ns, answered);
      if (fwdSent === undefined) continue;
      fwdRecv = first(l, 'fwd.recv', fwdSent.ns, answered, (k) => k === fwdSent!.key);
      if (fwdRecv === undefined) continue;
      proposed = first(l, 'core.proposed', fwdRecv.ns, answered);
    } else {
      proposed = first(l, 'core.proposed', frame.ns, answered);
    }
    if (proposed === undefined) continue;
    const index = proposed.key;
    const atLeast = (k: number): boolean => k >= index;
    const appendSent = first(l, 'append.sent', proposed.ns, answered, atLeast);
    const leaderSynced = first(l, 'synced', proposed.ns, answered, atLeast);
    const applied = first(l, 'applied', proposed.ns, answered, (k) => k === index);
    if (appendSent === undefined || leaderSynced === undefined || applied === undefined) continue;
    // The followers' legs; the commit needs the first acknowledgement to come back.
    const followers = target === 'follower' ? [f, g] : [g, h];
    const legs = followers.map((trace) => {
      const recv = first(trace, 'append.recv', appendSent.ns, answered, atLeast);
      const synced = recv && first(trace, 'synced', recv.ns, answered, atLeast);
      const ackSent = synced && first(trace, 'ack.sent', synced.ns, answered, atLeast);
      const ackRecv = ackSent && first(l, 'ack.recv', ackSent.ns, answered, atLeast);
      return recv && synced && ackSent && ackRecv ? { recv, synced, ackSent, ackRecv } : undefined;
    });
    const legsDone = legs.filter((leg) => leg !== undefined);
    if (legsDone.length === 0) continue;
    const leg = legsDone.reduce((a, b) => (b.ackRecv.ns < a.ackRecv.ns ? b : a));
    const quorum = Math.max(leg.ackRecv.ns, leaderSynced.ns);
    /** The leader's replication round, the same whichever member holds the client. */
    const replicated = (): void => {
      add('L: proposed → Appends sent', appendSent.ns - proposed.ns);
      add('wire L → follower (Append)', leg.recv.ns - appendSent.ns);
      add('follower: Append read → synced', leg.synced.ns - leg.recv.ns);
      add('follower: synced → ack sent', leg.ackSent.ns - leg.synced.ns);
      add('wire follower → L (ack)', leg.ackRecv.ns - leg.ackSent.ns);
      add('L: quorum (ack and own sync) → applied', applied.ns - quorum);
    };
    let answerSent: Step | undefined;
    if (target === 'follower') {
      const answeredByLeader = first(l, 'fwd.answered', applied.ns, answered, (k) => k === fwdSent!.key);
      const answerRecv = answeredByLeader && first(f, 'fwd.answer.recv', answeredByLeader.ns, answered, (k) => k === fwdSent!.key);
      answerSent = answerRecv && first(f, 'client.answer', answerRecv.ns, answered);
      if (answeredByLeader === undefined || answerRecv === undefined || answerSent === undefined) continue;
      add('client → F: request frame read', frame.ns - sent);
      add('F: frame read → forwarded to L', fwdSent!.ns - frame.ns);
      add('wire F → L (forward)', fwdRecv!.ns - fwdSent!.ns);
      add('L: forward read → proposed', proposed.ns - fwdRecv!.ns);
      replicated();
      add('L: applied → answer sent to F', answeredByLeader.ns - applied.ns);
      add('wire L → F (answer)', answerRecv.ns - answeredByLeader.ns);
      add('F: answer read → client answer sent', answerSent.ns - answerRecv.ns);
    } else {
      answerSent = first(l, 'client.answer', applied.ns, answered);
      if (answerSent === undefined) continue;
      add('client → L: request frame read', frame.ns - sent);
      add('L: frame read → proposed', proposed.ns - frame.ns);
      replicated();
      add('L: applied → client answer sent', answerSent.ns - applied.ns);
    }
    add('→ client: answer read', answered - answerSent.ns);
    add('(beside) L: proposed → own sync done', leaderSynced.ns - proposed.ns);
    add('(beside) L: waited for its own sync after the ack', Math.max(0, leaderSynced.ns - leg.ackRecv.ns));
    add('total: put sent → answer read', answered - sent);
    lined += 1;
  }
  return { breakdown, lined };
}

function report(target: string, breakdown: Breakdown, lined: number): void {
  console.log(`\nthrough the ${target}: ${lined} of ${puts} puts lined up across the members (µs)`);
  const width = Math.max(...[...breakdown.keys()].map((k) => k.length));
  console.log(`${'step'.padEnd(width)}  ${'p50'.padStart(7)}  ${'p90'.padStart(7)}  ${'mean'.padStart(7)}`);
  let sumOfMedians = 0;
  for (const [label, list] of breakdown) {
    const sorted = [...list].sort((a, b) => a - b);
    const mean = list.reduce((a, b) => a + b, 0) / list.length;
    if (!label.startsWith('(') && !label.startsWith('total')) sumOfMedians += percentile(sorted, 50);
    console.log(`${label.padEnd(width)}  ${percentile(sorted, 50).toFixed(0).padStart(7)}  ${percentile(sorted, 90).toFixed(0).padStart(7)}  ${mean.toFixed(0).padStart(7)}`);
  }
  console.log(`${'sum of the critical steps\' medians'.padEnd(width)}  ${sumOfMedians.toFixed(0).padStart(7)}`);
}

const traceDir = mkdtempSync(join(tmpdir(), 'warden-path-'));
process.env.TRACE_WARDEN_PATHS = traceDir; // the members inherit it
const cluster = await Cluster.start(3);
try {
  const leader = await cluster.leader();
  const follower = cluster.members.find((m) => m.name !== leader)!.name;
  const value = 'v'.repeat(256);
  const windows = new Map<string, [number, number][]>();
  for (const target of targets) {
    const member = target === 'leader' ? leader : follower;
    const client = connect({ endpoints: cluster.member(member).clientUrl, timeoutMs: 10_000 });
    for (let i = 0; i < 500; i++) await client.put(`/bench/k${i % 1_000}`, value); // warm-up
    const list: [number, number][] = [];
    for (let i = 0; i < puts; i++) {
      const sent = Number(process.hrtime.bigint());
      await client.put(`/bench/k${i % 1_000}`, value);
      list.push([sent, Number(process.hrtime.bigint())]);
    }
    windows.set(target, list);
    await client.close();
  }
  // A clean exit is when a member writes its trace.
  const pids = new Map(cluster.members.map((m) => [m.name, m.process!.pid!]));
  for (const member of cluster.members) await cluster.kill(member.name, 'SIGTERM');
  const traces = new Map([...pids].map(([name, pid]) => [name, readTrace(traceDir, pid)]));
  const others = cluster.members.map((m) => m.name).filter((n) => n !== leader && n !== follower);
  for (const target of targets) {
    const l = traces.get(leader)!;
    const f = target === 'leader' ? l : traces.get(follower)!;
    const g = traces.get(target === 'leader' ? follower : others[0]!)!;
    const h = traces.get(others[0]!)!;
    const { breakdown, lined } = lineUp(target, windows.get(target)!, f, l, g, h);
    report(target, breakdown, lined);
  }
} finally {
  await cluster.stop();
  rmSync(traceDir, { recursive: true, force: true });
}
