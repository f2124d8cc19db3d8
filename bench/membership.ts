/**
 * `npm run bench:membership`: what membership changes cost on a real 3-member cluster (fsync
 * on). A client writes 256-byte values one at a time through the whole run; the figures are:
 * - for each change (add a learner, promote it, remove a follower, remove the leader), repeated
 *   --rounds times: the longest time without a completed write in the change's window (write
 *   unavailability), its p50 and max over the rounds, and the write p50 around it;
 * - replacing a member: with --mib MiB of state loaded first, the time from `memberAdd` to the
 *   learner caught up and promoted, and the writes per second the cluster kept meanwhile beside
 *   the writes per second before.
 * A round: add and promote a new member, remove a follower, add and promote another, remove the
 * leader — the cluster stays at three voters. Flags: --mib N (default 64), --rounds R (default 3).
 *
 * Must never: run in CI; be read as a test; leave members behind.
 */

import { parseArgs } from 'node:util';
import { Cluster, ProtocolClient } from '../test/integration/cluster.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' } } });
const mib = Number(values.mib);
const rounds = Number(values.rounds);
const FIRST = ['n1', 'n2', 'n3'];
const value = Buffer.alloc(256, 0x61).toString('base64');

interface Write {
  readonly at: number;
  readonly ms: number;
}

/**
 * Writes one at a time until stopped, following NOT_LEADER hints (and trying the members in turn
 * when one fails); records each write's latency.
 */
class Writer {
  readonly writes: Write[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly cluster: Cluster) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let conn: ProtocolClient | null = null;
    let lost: Promise<never> = Promise.reject(new Error('no connection'));
    lost.catch(() => undefined);
    let url = this.cluster.member('n1').clientUrl;
    let turn = 0;
    let i = 0;
    while (this.running) {
      try {
        if (conn === null) {
          conn = await ProtocolClient.connect(url);
          const socket = conn.socket;
          // A member killed under a write never answers it: its socket's close ends the wait.
          lost = new Promise<never>((_, reject) => socket.once('close', () => reject(new Error('the member went away'))));
          lost.catch(() => undefined);
        }
        const started = performance.now();
        const answer = await Promise.race([conn.request('put', { path: `/w/k${i++ % 1_000}`, value }, 5_000), lost]);
        if (answer['ok'] === true) {
          this.writes.push({ at: started, ms: performance.now() - started });
          continue;
        }
        const hint = (answer['error'] as { leader?: { url?: string | null } } | undefined)?.leader?.url;
        conn.close();
        conn = null;
        url = typeof hint === 'string' ? hint : this.cluster.members[turn++ % this.cluster.members.length]!.clientUrl;
      } catch {
        conn?.close();
        conn = null;
        url = this.cluster.members[turn++ % this.cluster.members.length]!.clientUrl;
        await new Promise((resolve) => setTimeout(resolve, 20)); // a member down: do not spin
      }
    }
    conn?.close();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  /** Writes started in [from, to). */
  between(from: number, to: number): Write[] {
    return this.writes.filter((w) => w.at >= from && w.at < to);
  }

  /** The longest time in [from, to) in which no write completed: write unavailability. */
  longestGap(from: number, to: number): number {
    let last = from;
    let gap = 0;
    for (const w of this.writes) {
      const end = w.at + w.ms;
      if (end < from) continue;
      if (end > to) break;
      gap = Math.max(gap, end - last);
      last = end;
    }
    return Math.max(gap, to - last);
  }
}

const pct = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
};

async function ask(cluster: Cluster, type: string, fields: Record<string, unknown>, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  const conn = await ProtocolClient.connect(cluster.member(await cluster.leader()).clientUrl);
  try {
    const answer = await conn.request(type, fields, timeoutMs);
    if (answer['ok'] !== true) throw new Error(`${type}: ${JSON.stringify(answer)}`);
    return answer;
  } finally {
    conn.close();
  }
}

async function load(cluster: Cluster, bytes: number): Promise<void> {
  const conn = await ProtocolClient.connect(cluster.member(await cluster.leader()).clientUrl);
  const big = Buffer.alloc(64 * 1024, 0x62).toString('base64');
  const count = Math.ceil(bytes / (64 * 1024));
  for (let k = 0; k < count; k += 32) await Promise.all(Array.from({ length: Math.min(32, count - k) }, (_, j) => conn.request('put', { path: `/load/k${k + j}`, value: big }, 60_000)));
  conn.close();
}

type Change = 'add a learner' | 'catch up and promote' | 'remove a follower' | 'remove the leader';
const unavailableMs: Record<Change, number[]> = { 'add a learner': [], 'catch up and promote': [], 'remove a follower': [], 'remove the leader': [] };

const cluster = await Cluster.plan(FIRST.length + 2 * rounds, { tickMs: 100 });
try {
  for (const name of FIRST) cluster.launch(cluster.member(name), { initialCluster: cluster.specOf(FIRST) });
  await cluster.leader();
  console.log(`loading ${mib} MiB of state…`);
  await load(cluster, mib * 1024 * 1024);
  const writer = new Writer(cluster);
  const window = async (change: Change, label: string, run: () => Promise<void>, afterMs = 1_000): Promise<void> => {
    const from = performance.now();
    await run();
    const to = performance.now() + afterMs; // what the change leaves behind counts too
    while (performance.now() < to) await new Promise((resolve) => setTimeout(resolve, 100)); // measuring a window
    const ms = writer.between(from, to).map((w) => w.ms);
    const gap = writer.longestGap(from, to);
    unavailableMs[change].push(gap);
    console.log(`  ${label.padEnd(34)} writes ${String(ms.length).padStart(5)}  p50 ${pct(ms, 50).toFixed(2)} ms  longest without a write ${gap.toFixed(1)} ms`);
  };
  await new Promise((resolve) => setTimeout(resolve, 3_000)); // the writer's steady state, before anything changes
  const before = writer.between(performance.now() - 3_000, performance.now()).length / 3;
  console.log(`\nwrites (1 in flight, following the leader) in each change's window (the change and 1 s after; 5 s for the leader's removal):`);
  const voters = [...FIRST];
  let next = FIRST.length + 1;
  let replace: { seconds: number; writesPerSecond: number } | null = null;
  const addAndPromote = async (): Promise<void> => {
    const name = `n${next++}`;
    let added = 0;
    await window('add a learner', `add ${name} as a learner (start it)`, async () => {
      added = performance.now();
      await ask(cluster, 'memberAdd', { name, peerUrl: cluster.peerUrlOf(name) });
      cluster.launch(cluster.member(name), { initialCluster: cluster.specOf([...voters, name]), extraArgs: ['--initial-cluster-state', 'existing'] });
    });
    await window('catch up and promote', `catch up and promote ${name}`, async () => {
      for (;;) {
        const list = await ask(cluster, 'memberList', {});
        const member = (list['members'] as { name: string; lag: number | null }[]).find((m) => m.name === name);
        if (member?.lag !== null && member !== undefined && member.lag <= 100) break;
        await new Promise((resolve) => setTimeout(resolve, 200)); // polling the learner's lag
      }
      const writesPerSecond = writer.between(added, performance.now()).length / ((performance.now() - added) / 1_000);
      await ask(cluster, 'memberPromote', { name });
      replace ??= { seconds: (performance.now() - added) / 1_000, writesPerSecond };
    });
    voters.push(name);
  };
  const remove = async (change: Change, name: string): Promise<void> => {
    await window(change, `${change === 'remove the leader' ? 'remove the leader' : 'remove a follower'} (${name})`, async () => {
      await ask(cluster, 'memberRemove', { name });
      await cluster.kill(name); // a removed member is shut down
    }, change === 'remove the leader' ? 5_000 : 1_000);
    voters.splice(voters.indexOf(name), 1);
  };
  for (let round = 0; round < rounds; round++) {
    await addAndPromote();
    const leader = await cluster.leader();
    await remove('remove a follower', voters.find((v) => v !== leader)!);
    await addAndPromote();
    await remove('remove the leader', await cluster.leader());
  }
  await writer.stop();
  console.log(`\nwrite unavailability (longest time without a completed write) over ${rounds} rounds:`);
  for (const [change, gaps] of Object.entries(unavailableMs)) console.log(`  ${change.padEnd(22)} p50 ${pct(gaps, 50).toFixed(1).padStart(6)} ms  max ${Math.max(...gaps).toFixed(1).padStart(6)} ms`);
  if (replace !== null) {
    const r = replace as { seconds: number; writesPerSecond: number };
    console.log(`\nreplacing a member holding ${mib} MiB: add → caught up and promoted in ${r.seconds.toFixed(1)} s; writes/s meanwhile ${r.writesPerSecond.toFixed(0)} (before: ${before.toFixed(0)})`);
  }
} finally {
  await cluster.stop();
}
