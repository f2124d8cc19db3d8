/**
 * `npm run bench:adversarial`: how a 3-member Warden cluster behaves under hostile clients.
 * Each case (bench/adversarial/cases-*.ts) starts a fresh cluster of real `wardend` processes
 * at the default tick (100 ms), prepares what it needs (not counted), then runs one attack while
 * the monitor (test/adversarial/monitor.ts, a worker thread shared with the adversarial suite)
 * measures: probe round trips per member (event-loop lag), a canary client's put + linearizable
 * get on a follower, each member's RSS and CPU, leader changes, crashes. Figures cover the attack
 * and a settle of 2 s after it; CPU covers the attack alone.
 *
 * With `--before PATH` (another worktree's server/main.ts, e.g. /work/before/server/main.ts) each
 * case runs against that server first and this one (or --server) second, and a table of before
 * → after figures closes the output: wall time of the attack, worst probe p99/max, peak RSS,
 * leader changes, crashes.
 *
 * Flags: --server PATH, --before PATH, --tick-ms 100, --cases deep-id,recursive-delete,
 * deep-path-watch,watch-replay,big-answer,unread,answer-bound,sessions (the default list;
 * `deep-path` is deep-path-watch without the watch), --children 5000,10000,20000,100000 (recursive-delete
 * sizes), --puts 50000 and --value-bytes 100 (watch-replay), --registers 100000 (sessions),
 * --unread-max 1200 (gets per unread connection; a list runs each), --json (a JSON line per case).
 *
 * Must never: wait without a bound; leave a member process or a data folder behind (Ctrl-C
 * stops the cluster); use a server module (the protocol alone); be read as a test.
 */

import { execFileSync } from 'node:child_process';
import { dirname, resolve as resolvePath } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Cluster } from '../test/integration/cluster.js';
import { clock, Conn } from '../test/adversarial/conn.js';
import { Monitor, readCpuSeconds, windowFigures, type MonitorMember, type WindowFigures } from '../test/adversarial/monitor.js';
import { ms, round1, sleep, type CaseSpec, type Ctx, type Row } from './adversarial/case.js';
import { deepId, deepPath, recursiveDelete, watchReplay } from './adversarial/cases-tree.js';
import { answerBound, bigAnswer, sessions, unread } from './adversarial/cases-load.js';

const BASELINE_MS = 1_500;
const SETTLE_MS = 2_000;

interface Crash {
  readonly member: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly atS: number;
  readonly lastLogs: string[];
}
/** What the before → after table shows of one run. */
interface Summary {
  readonly attackMs: number | null;
  readonly worstProbe: string;
  readonly peakRssMiB: number | null;
  readonly leaderChanges: number | null;
  readonly crashes: number;
  readonly error?: string;
}

let current: { cluster: Cluster; stopping: boolean } | null = null;

async function runCase(spec: CaseSpec, server: string, tickMs: number): Promise<{ report: Record<string, unknown>; rows: Row[]; summary: Summary }> {
  const cluster = await Cluster.start(3, { main: server, tickMs });
  const run = { cluster, stopping: false };
  current = run;
  const crashes: (Omit<Crash, 'atS'> & { at: number })[] = [];
  for (const m of cluster.members) {
    m.process?.once('exit', (code, signal) => {
      if (run.stopping) return;
      const tail = m.logs.slice(-80);
      const errors = tail.filter((l) => /Error|error|fatal|FATAL/.test(l) && !/^\s+at /.test(l));
      crashes.push({ member: m.name, code, signal, at: clock(), lastLogs: (errors.length > 0 ? errors.slice(-3) : tail.slice(-3)).map((l) => l.slice(0, 400)) });
    });
  }
  const conns: Conn[] = [];
  let monitor: Monitor | null = null;
  const lag = monitorEventLoopDelay({ resolution: 10 });
  try {
    const roles = async (): Promise<Pick<Ctx, 'leader' | 'leaderUrl' | 'followerUrl'>> => {
      const leader = await cluster.leader(30_000);
      return { leader, leaderUrl: cluster.member(leader).clientUrl, followerUrl: cluster.members.find((m) => m.name !== leader && m.process !== null)!.clientUrl };
    };
    const ctx: Ctx = {
      cluster,
      ...(await roles()),
      open: async (url, options) => {
        const conn = await Conn.open(url, options);
        conns.push(conn);
        return conn;
      },
      state: {},
    };
    if (spec.setup !== undefined) await spec.setup(ctx);
    Object.assign(ctx, await roles());
    const members: MonitorMember[] = cluster.members.map((m) => ({ name: m.name, clientUrl: m.clientUrl, httpUrl: m.httpUrl, pid: m.process!.pid! }));
    monitor = await Monitor.start({ members, canaryUrl: ctx.followerUrl });
    const baselineFrom = clock();
    await sleep(BASELINE_MS); // the baseline window, measured
    lag.enable();
    const attackStart = clock();
    const cpuStart = members.map((m) => readCpuSeconds(m.pid));
    let limitTimer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      spec.attack(ctx),
      new Promise<never>((_, reject) => (limitTimer = setTimeout(() => reject(new Error(`the attack did not finish within ${spec.limitMs} ms`)), spec.limitMs))),
    ]).finally(() => clearTimeout(limitTimer));
    const attackEnd = clock();
    const cpuEnd = members.map((m) => readCpuSeconds(m.pid));
    await sleep(SETTLE_MS); // the settle window, measured
    lag.disable();
    const f = windowFigures(await monitor.snapshot(baselineFrom), members, attackStart);
    const cpu: Record<string, number | null> = {};
    members.forEach((m, i) => (cpu[m.name] = cpuStart[i] == null || cpuEnd[i] == null ? null : round1(cpuEnd[i]! - cpuStart[i]!)));
    const crashList: Crash[] = crashes.map((c) => ({ ...c, atS: round1((c.at - attackStart) / 1000) }));
    const summary = summarize(f, attackEnd - attackStart, crashList.length);
    const rows: Row[] = [...outcome.rows, ...commonRows(f, ctx.leader, cpu, crashList, attackEnd - attackStart, lag.max / 1e6)];
    return { report: { case: spec.name, params: spec.params, server, attack: outcome.details, figures: { ...f, cpuS: cpu, crashes: crashList, attackMs: round1(attackEnd - attackStart) } }, rows, summary };
  } catch (error) {
    const message = (error as Error).stack ?? String(error);
    const logs = cluster.members.map((m) => `${m.name}: ${m.logs.slice(-3).join(' | ').slice(0, 600)}`).join('\n');
    return {
      report: { case: spec.name, params: spec.params, server, error: (error as Error).message, crashes },
      rows: [
        ['FAILED', message.split('\n').slice(0, 3).join(' / ')],
        ['crashes', crashes.length === 0 ? 'none' : crashes.map((c) => `${c.member} exit ${String(c.code)} ${String(c.signal)}`).join(', ')],
        ['last logs', logs],
      ],
      summary: { attackMs: null, worstProbe: '—', peakRssMiB: null, leaderChanges: null, crashes: crashes.length, error: (error as Error).message.slice(0, 80) },
    };
  } finally {
    lag.disable();
    for (const c of conns) c.terminate();
    await monitor?.stop().catch(() => undefined);
    run.stopping = true;
    await cluster.stop();
    current = null;
  }
}

function summarize(f: WindowFigures, attackMs: number, crashes: number): Summary {
  const [worst, p] = Object.entries(f.probe).sort(([, a], [, b]) => (b.max || 0) - (a.max || 0))[0]!;
  const peaks = Object.values(f.rssMiB).map((r) => r.peak ?? 0);
  return { attackMs: round1(attackMs), worstProbe: `${worst} ${ms(p.p99)}/${ms(p.max)}`, peakRssMiB: Math.max(...peaks), leaderChanges: Math.max(0, f.leaders.length - 1), crashes };
}

function commonRows(f: WindowFigures, leader: string, cpu: Record<string, number | null>, crashes: Crash[], attackMs: number, benchLagMs: number): Row[] {
  const probe = Object.entries(f.probe).map(([name, p]) => `${name}${name === leader ? '(L)' : ''} ${ms(p.p50)}/${ms(p.p99)}/${ms(p.max)}${p.errors > 0 ? ` ${p.errors} errors` : ''}`);
  const rss = Object.entries(f.rssMiB).map(([name, r]) => `${name}${name === leader ? '(L)' : ''} ${String(r.baseline)} → ${r.peak === null ? '— (exited)' : String(r.peak)}`);
  return [
    ['probe p50/p99/max', probe.join('  ')],
    ['canary', `${f.canary.requests} requests, p99 ${ms(f.canary.p99Ms)}, slowest ${f.canary.slowest}; failed ${JSON.stringify(f.canary.failures)}`],
    ['RSS MiB baseline → peak', rss.join('; ')],
    ['leader changes', `${Math.max(0, f.leaders.length - 1)} (${f.leaders.join(', ')})`],
    ['member crashes', crashes.length === 0 ? 'none' : crashes.map((x) => `${x.member} exit ${String(x.code)} signal ${String(x.signal)} at ${x.atS} s: ${x.lastLogs.join(' | ').slice(0, 300)}`).join(', ')],
    ['CPU over the attack', Object.entries(cpu).map(([n, s]) => `${n}${n === leader ? '(L)' : ''} ${String(s)} s`).join(', ')],
    ['attack wall', `${ms(attackMs)} (bench main-thread lag max ${ms(benchLagMs)})`],
  ];
}

function printTable(title: string, rows: readonly Row[]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n== ${title}\n`);
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
}

function revisionOf(server: string): string {
  try {
    const dir = dirname(server);
    const head = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']).toString().trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--', '.']).toString().trim().length > 0;
    return `${head}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      before: { type: 'string' },
      'tick-ms': { type: 'string', default: '100' },
      cases: { type: 'string', default: 'deep-id,recursive-delete,deep-path-watch,watch-replay,big-answer,unread,answer-bound,sessions' },
      children: { type: 'string', default: '5000,10000,20000,100000' },
      puts: { type: 'string', default: '50000' },
      'value-bytes': { type: 'string', default: '100' },
      registers: { type: 'string', default: '100000' },
      'unread-max': { type: 'string', default: '1200' },
      json: { type: 'boolean', default: false },
    },
  });
  const after = values.server === undefined ? new URL('../server/main.ts', import.meta.url).pathname : resolvePath(values.server);
  const servers = values.before === undefined ? [after] : [resolvePath(values.before), after];
  const all: Record<string, () => CaseSpec[]> = {
    'deep-id': () => [deepId],
    'recursive-delete': () => values.children.split(',').map((n) => recursiveDelete(Number(n))),
    'deep-path-watch': () => [deepPath(true)],
    'deep-path': () => [deepPath(false)],
    'watch-replay': () => values['value-bytes'].split(',').map((n) => watchReplay(Number(values.puts), Number(n))),
    'big-answer': () => [bigAnswer],
    unread: () => values['unread-max'].split(',').map((n) => unread(Number(n))),
    'answer-bound': () => [answerBound],
    sessions: () => [sessions(Number(values.registers))],
  };
  const specs: CaseSpec[] = [];
  for (const name of values.cases.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const make = all[name];
    if (make === undefined) throw new Error(`unknown case ${name}; cases: ${Object.keys(all).join(', ')}`);
    specs.push(...make());
  }
  const tickMs = Number(values['tick-ms']);
  for (const server of servers) process.stdout.write(`adversarial bench: ${server === after ? 'after' : 'before'}: ${server} at ${revisionOf(server)}\n`);
  process.stdout.write(`${specs.length} cases; tick ${tickMs} ms; node ${process.version}\n`);
  const stopOnSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping the cluster\n`);
    const run = current;
    if (run === null) process.exit(130);
    run.stopping = true;
    void run.cluster.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  const table: Row[] = [];
  for (const spec of specs) {
    const summaries: Summary[] = [];
    for (const server of servers) {
      const started = clock();
      const { report, rows, summary } = await runCase(spec, server, tickMs);
      summaries.push(summary);
      printTable(`${spec.label}${servers.length > 1 ? ` — ${server === after ? 'after' : 'before'}` : ''}  [${ms(clock() - started)} with setup]`, rows);
      if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    }
    const show = (s: Summary): string => (s.error !== undefined ? `FAILED (${s.error})` : `${ms(s.attackMs)}, probe ${s.worstProbe}, RSS ${String(s.peakRssMiB)} MiB, ${String(s.leaderChanges)} leader changes, ${s.crashes} crashes`);
    table.push([spec.name, summaries.map(show).join('  →  ')]);
  }
  printTable(servers.length > 1 ? 'before → after: attack wall, worst probe p99/max, peak RSS, leader changes, crashes' : 'summary: attack wall, worst probe p99/max, peak RSS, leader changes, crashes', table);
}

await main();
process.exit(0);
