/**
 * The arena an adversarial test file fights in: a 3-member cluster of real `wardend` processes
 * at the default tick (100 ms), a monitor (monitor.ts) watching it from a worker thread, and
 * `underAttack`, which runs one case and then fails it unless, over the case's window:
 * - the canary on a follower (put, then linearizable get, in a loop) had no failed request and
 *   none slower than CANARY_MAX_MS;
 * - no member's probe round trip p99 reached PROBE_P99_MAX_MS (event-loop lag, from outside);
 * - no member's RSS passed RSS_MAX_MIB (what a member used in these cases on this machine was
 *   at most ~250 MiB; the old server reached 800 MiB to 3 GiB in the same attacks);
 * - the (leader, term) every member reports stayed one pair;
 * - no member process exited.
 * The window runs from the attack's start until every member has answered TAIL_PROBES more
 * probes after its end, so lag the attack leaves behind (an apply still running) is counted.
 * A window holds at least WINDOW_PROBES_MIN probes per member, so its p99 is a percentile (of
 * fewer than 100, the p99 would be the slowest probe). The attacking thread (the
 * test's) runs niced once the members and the monitor are up: on 2 shared cores its own CPU
 * would otherwise delay the probes and the members, as a client on another machine cannot.
 *
 * `ADVERSARIAL_SERVER_MAIN=/work/before/server/main.ts npm run test:adversarial` runs the suite
 * against another server/main.ts, to show the cases bite (not a WARDEN_* variable: wardend reads
 * those as flags); the flags that server does not know are left out.
 *
 * Must never: wait without a bound; leave a process, a connection or a folder behind
 * (afterEach closes the connections a test opened, afterAll stops the monitor and the cluster).
 */

import { execFileSync } from 'node:child_process';
import { setPriority } from 'node:os';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Cluster } from '../integration/cluster.js';
import { clock, Conn, until } from './conn.js';
import { Monitor, windowFigures, type MonitorMember, type WindowFigures } from './monitor.js';

export const CANARY_MAX_MS = 1_000;
export const PROBE_P99_MAX_MS = 100;
export const RSS_MAX_MIB = 400;
/** Probes every member must answer after an attack ends before its window closes. */
const TAIL_PROBES = 30;
/**
 * Probes a window holds at least (it stays open after the attack until each member answered
 * this many): a p99 over fewer is its slowest probe, a maximum, not a percentile.
 */
const WINDOW_PROBES_MIN = 200;
/** The time one attack may take before it is failed. */
const ATTACK_MAX_MS = 90_000;
const TICK_MS = 100;
/** The attacking thread's nice value (see Arena.start). */
const ATTACKER_NICE = 10;

/** The server/main.ts under test: this tree's, or the one ADVERSARIAL_SERVER_MAIN names. */
export const SERVER_MAIN: string | undefined = process.env['ADVERSARIAL_SERVER_MAIN'] || undefined;
export const OLD_SERVER = SERVER_MAIN !== undefined;

let knownFlags: string | null = null;
/** `--name value` pairs the server under test accepts (its --help names them); others are dropped. */
export function supportedArgs(args: readonly string[]): string[] {
  if (SERVER_MAIN === undefined) return [...args];
  knownFlags ??= execFileSync(process.execPath, ['--import', 'tsx', SERVER_MAIN, '--help'], { encoding: 'utf8', timeout: 30_000 });
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 2) {
    if (knownFlags.includes(`${args[i]!} `) || knownFlags.includes(`${args[i]!}\n`)) out.push(args[i]!, args[i + 1]!);
  }
  return out;
}

export interface ArenaOptions {
  /** wardend flags for every member, as `--flag value` pairs. */
  readonly flags?: readonly string[];
  /** The canary's user and password, for a file that turns auth on (it must create the user first). */
  readonly canaryAuth?: { readonly user: string; readonly password: string };
}

export interface CaseReport {
  readonly label: string;
  readonly figures: WindowFigures;
  readonly violations: string[];
}

export class Arena {
  cluster!: Cluster;
  monitor!: Monitor;
  members: MonitorMember[] = [];
  leader = '';
  leaderUrl = '';
  followerUrl = '';
  /** The follower the canary is not on: only the monitor's probe talks to it. */
  quiet = '';
  quietUrl = '';
  /** Member exits seen since the arena started (none is expected). */
  readonly exits: { member: string; code: number | null; signal: string | null; at: number }[] = [];
  /** The report of the last `underAttack` (its figures: probe, canary, RSS per member). */
  lastReport: CaseReport | null = null;
  private conns: Conn[] = [];
  private stopping = false;

  async start(options: ArenaOptions): Promise<void> {
    this.cluster = await Cluster.start(3, { tickMs: TICK_MS, extraArgs: supportedArgs(options.flags ?? []), ...(SERVER_MAIN === undefined ? {} : { main: SERVER_MAIN }) });
    for (const m of this.cluster.members) {
      m.process!.once('exit', (code, signal) => {
        if (!this.stopping) this.exits.push({ member: m.name, code, signal, at: clock() });
      });
    }
    this.leader = await this.cluster.leader(30_000);
    this.leaderUrl = this.cluster.member(this.leader).clientUrl;
    const follower = this.cluster.members.find((m) => m.name !== this.leader)!;
    this.followerUrl = follower.clientUrl;
    const quiet = this.cluster.members.find((m) => m.name !== this.leader && m !== follower)!;
    this.quiet = quiet.name;
    this.quietUrl = quiet.clientUrl;
    this.members = this.cluster.members.map((m) => ({ name: m.name, clientUrl: m.clientUrl, httpUrl: m.httpUrl, pid: m.process!.pid! }));
    this.monitor = await Monitor.start({ members: this.members, canaryUrl: this.followerUrl, ...(options.canaryAuth === undefined ? {} : { canaryAuth: options.canaryAuth }) });
    // The attacking client is niced (this thread only: the members and the monitor's thread were
    // started before and keep their priority): on 2 shared cores its own CPU would otherwise
    // delay the probes and the members, as an attacker on another machine could not.
    try {
      setPriority(0, ATTACKER_NICE);
    } catch {
      // not allowed here: measured as it is
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.closeConnections();
    await this.monitor?.stop().catch(() => undefined);
    await this.cluster?.stop();
  }

  /** A connection to `url` (the leader's by default), closed after the test. */
  async open(url = this.leaderUrl, options: { maxPayload?: number } = {}): Promise<Conn> {
    const conn = await Conn.open(url, options);
    this.conns.push(conn);
    return conn;
  }

  closeConnections(): void {
    for (const conn of this.conns.splice(0)) conn.terminate();
  }

  /** A number from a member's /status (connections, watches, sessions, leases, revision, commit…). */
  async statusOf(name: string, field: string): Promise<number> {
    return Number((await this.cluster.status(name))?.[field] ?? NaN);
  }

  /** Where a member's log is now: `logLine` looks after it. */
  logMark(name: string): number {
    return this.cluster.member(name).logs.length;
  }

  /**
   * Waits (bounded) for a log line of `name` after `mark` that matches `pattern`: how a test sees
   * what a member did to a client that cannot read (a close it sends sits behind unread bytes).
   */
  async logLine(name: string, mark: number, pattern: RegExp, timeoutMs = 15_000): Promise<string | null> {
    let found: string | null = null;
    await until(() => (found = this.cluster.member(name).logs.slice(mark).find((line) => pattern.test(line)) ?? null) !== null, timeoutMs, 20);
    return found;
  }

  /** The logs of a member, last `lines` of them (for failure messages). */
  logs(name: string, lines = 5): string {
    return this.cluster.member(name).logs.slice(-lines).join('\n');
  }

  /**
   * Runs `attack` and checks the invariants over its window; throws with every broken one (and
   * the attack's own failure first, if it threw). Answers what the attack answered.
   */
  async underAttack<T>(label: string, attack: () => Promise<T>, bounds: { attackMaxMs?: number } = {}): Promise<T> {
    const from = clock();
    let result: T | undefined;
    let failure: unknown = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      const limit = bounds.attackMaxMs ?? ATTACK_MAX_MS;
      result = await Promise.race([attack(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the attack did not finish within ${limit} ms`)), limit)))]);
    } catch (error) {
      failure = error;
    } finally {
      clearTimeout(timer);
    }
    const report = await this.check(label, from);
    this.lastReport = report;
    if (failure !== null || report.violations.length > 0) {
      const attackFailure = failure === null ? '' : `${failure instanceof Error ? (failure.stack ?? failure.message) : String(failure)}\n`;
      throw new Error(`${label}: ${attackFailure}${report.violations.length === 0 ? 'invariants held' : `invariants broken:\n  ${report.violations.join('\n  ')}`}`);
    }
    return result as T;
  }

  /** The invariants over the window from `from` to now (after the tail probes). */
  async check(label: string, from: number): Promise<CaseReport> {
    const end = clock();
    const violations: string[] = [];
    // Each member answers TAIL_PROBES probes sent after the end (a member that does not is
    // stalled), and the window holds WINDOW_PROBES_MIN probes in all.
    const tailed = await until(async () => {
      const tail = await this.monitor.snapshot(end);
      const window = await this.monitor.snapshot(from);
      const answered = (list: (typeof tail.probes)[number]): number => list.filter(([, , state]) => state !== 2).length;
      return tail.probes.every((list) => answered(list) >= TAIL_PROBES) && window.probes.every((list) => answered(list) >= WINDOW_PROBES_MIN);
    }, 10_000, 100);
    if (!tailed) violations.push(`a member did not answer ${TAIL_PROBES} status probes within 10 s of the attack's end`);
    const snapshot = await this.monitor.snapshot(from - 3_000);
    const f = windowFigures(snapshot, this.members, from);
    for (const [name, p] of Object.entries(f.probe)) {
      if (!(p.p99 < PROBE_P99_MAX_MS)) violations.push(`${name}: probe round trip p99 ${p.p99} ms (max ${p.max} ms, ${p.over} of ${p.n} probes over), bound ${PROBE_P99_MAX_MS} ms`);
    }
    for (const [name, r] of Object.entries(f.rssMiB)) {
      if (r.peak !== null && r.peak > RSS_MAX_MIB) violations.push(`${name}: RSS peaked at ${r.peak} MiB (baseline ${String(r.baseline)}), bound ${RSS_MAX_MIB} MiB`);
    }
    if (Object.keys(f.canary.failures).length > 0) violations.push(`canary failures ${JSON.stringify(f.canary.failures)}`);
    if (!(f.canary.maxMs < CANARY_MAX_MS)) violations.push(`canary: slowest request ${f.canary.slowest} (${f.canary.requests} requests), bound ${CANARY_MAX_MS} ms`);
    if (f.canary.requests === 0) violations.push('canary: no request in the window');
    if (f.leaders.length !== 1) violations.push(`leadership changed: ${f.leaders.join(' → ') || 'no leader reported'}`);
    else if (f.leaders[0]!.split('@')[0] !== this.leader) violations.push(`the leader is ${f.leaders[0]}, not ${this.leader} as at the start`);
    for (const exit of this.exits) violations.push(`${exit.member} exited (code ${String(exit.code)}, signal ${String(exit.signal)}): ${this.logs(exit.member, 3)}`);
    const probes = Object.entries(f.probe).map(([n, p]) => `${n}${n === this.leader ? '(L)' : ''} ${p.p50}/${p.p99}/${p.max}`).join(' ');
    const rss = Object.entries(f.rssMiB).map(([n, r]) => `${n} ${String(r.baseline)}→${String(r.peak)}`).join(' ');
    process.stdout.write(`[adversarial] ${label}: ${Math.round(end - from)} ms; probe p50/p99/max ms ${probes}; canary ${f.canary.requests} max ${f.canary.maxMs} ms; RSS MiB ${rss}; ${violations.length === 0 ? 'ok' : `${violations.length} broken`}\n`);
    return { label, figures: f, violations };
  }
}

/** The arena of one test file: started before its tests, stopped after them. */
export function arena(options: ArenaOptions = {}): Arena {
  const a = new Arena();
  beforeAll(async () => {
    try {
      await a.start(options);
    } catch (error) {
      await a.stop();
      throw error;
    }
  }, 90_000);
  afterEach(() => a.closeConnections());
  afterAll(async () => {
    await a.stop();
  }, 30_000);
  return a;
}
