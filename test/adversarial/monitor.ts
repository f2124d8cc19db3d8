/**
 * The watcher of a cluster under attack, shared by the adversarial suite and
 * `npm run bench:adversarial`. It runs in a worker thread, so the attacking client's own work
 * (parsing a 20,000-revision replay, building 10,000 frames) never delays what it measures:
 * - probe: one WebSocket per member sending `{"type":"status"}` every 10 ms, one outstanding at
 *   a time; the round trip approximates the member's event-loop lag;
 * - canary: one client on a follower doing put /canary/k, then a linearizable get, in a loop;
 * - memory and CPU: each member's VmRSS (/proc/<pid>/status) and utime + stime every 50 ms;
 * - leadership: GET /status on every member every 100 ms, as (leader, term, commit).
 * The main thread asks for a snapshot of everything since a moment; a probe or a canary request
 * still unanswered counts with its time so far (a stall in progress is not hidden).
 *
 * Must never: wait without a bound; keep running after `stop()` (the worker is terminated);
 * import a server module (the protocol alone, so it measures any version of the server).
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { b64, clock, codeOf, Conn } from './conn.js';

export interface MonitorMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly httpUrl: string;
  readonly pid: number;
}
export interface MonitorInput {
  readonly members: readonly MonitorMember[];
  /** Where the canary runs (a follower's client URL); none when null. */
  readonly canaryUrl: string | null;
  /** The canary's user, once auth is on: it authenticates on each connection, and again when told to. */
  readonly canaryAuth?: { readonly user: string; readonly password: string };
}
/** Everything seen since a moment. Times are `clock()` milliseconds. */
export interface MonitorSnapshot {
  readonly at: number;
  /** Per member: [sentAt, rttMs, state] with state 0 answered ok, 1 error answer, 2 unanswered so far. */
  readonly probes: [number, number, number][][];
  /** [sentAt, kind 0 put / 1 get, latencyMs, error code, or 'OUTSTANDING' while unanswered]. */
  readonly canary: [number, number, number, string | null][];
  /** Per member: [t, rssKiB, cpuSeconds]. */
  readonly proc: [number, number, number][][];
  /** [t, member index, leader, term, commit]; leader null when unknown or the member did not answer. */
  readonly status: [number, number, string | null, number | null, number | null][];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const CLK_TCK = 100; // Linux's USER_HZ

export function readRssKiB(pid: number): number | null {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line === undefined ? null : Number(line.split(/\s+/)[1]);
  } catch {
    return null;
  }
}
export function readCpuSeconds(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

function monitorWorker(input: MonitorInput): void {
  const port = parentPort!;
  let running = true;
  const probes: [number, number, number][][] = input.members.map(() => []);
  const probeOutstanding: (number | null)[] = input.members.map(() => null);
  const canary: [number, number, number, string | null][] = [];
  let canaryOutstanding: [number, number] | null = null;
  /** While false the canary only reads (a case that checks nothing was proposed). */
  let canaryWrites = true;
  const proc: [number, number, number][][] = input.members.map(() => []);
  const status: [number, number, string | null, number | null, number | null][] = [];
  const ready = new Set<string>();
  const needed = input.members.length + (input.canaryUrl === null ? 0 : 1);
  const markReady = (what: string): void => {
    if (ready.has(what)) return;
    ready.add(what);
    if (ready.size === needed) port.postMessage({ kind: 'ready' });
  };

  const procTimer = setInterval(() => {
    const t = clock();
    input.members.forEach((m, i) => {
      const rss = readRssKiB(m.pid);
      const cpu = readCpuSeconds(m.pid);
      if (rss !== null && cpu !== null) proc[i]!.push([t, rss, cpu]);
    });
  }, 50);

  input.members.forEach((m, i) => {
    void (async () => {
      while (running) {
        const t = clock();
        try {
          const response = await fetch(`${m.httpUrl}/status`, { signal: AbortSignal.timeout(1_000) });
          const body = (await response.json()) as { leader?: unknown; term?: unknown; commit?: unknown };
          if (!running) break;
          const num = (x: unknown): number | null => (typeof x === 'number' ? x : null);
          status.push([t, i, typeof body.leader === 'string' ? body.leader : null, num(body.term), num(body.commit)]);
        } catch {
          if (!running) break;
          status.push([t, i, null, null, null]);
        }
        await sleep(Math.max(0, t + 100 - clock()));
      }
    })();
  });

  input.members.forEach((m, i) => {
    void (async () => {
      let conn: Conn | null = null;
      while (running) {
        if (conn === null || !conn.open) {
          try {
            conn = await Conn.open(m.clientUrl, {}, 2_000);
          } catch {
            await sleep(200);
            continue;
          }
        }
        const sent = clock();
        probeOutstanding[i] = sent;
        const answer = await conn.call('status', {}, 600_000);
        probeOutstanding[i] = null;
        if (!running) break;
        probes[i]!.push([sent, clock() - sent, answer['ok'] === true ? 0 : 1]);
        if (answer['ok'] === true) markReady(m.name);
        await sleep(Math.max(0, sent + 10 - clock()));
      }
      conn?.terminate();
    })();
  });

  if (input.canaryUrl !== null) {
    const url = input.canaryUrl;
    void (async () => {
      let conn: Conn | null = null;
      let round = 0;
      while (running) {
        if (conn === null || !conn.open) {
          try {
            conn = await Conn.open(url, {}, 2_000);
            if (input.canaryAuth !== undefined) await conn.call('authenticate', { ...input.canaryAuth }, 10_000);
          } catch {
            canary.push([clock(), 0, 0, 'NO_CONNECTION']);
            await sleep(200);
            continue;
          }
        }
        const kind = canaryWrites ? round++ % 2 : 1;
        const sent = clock();
        canaryOutstanding = [sent, kind];
        const answer = kind === 0 ? await conn.call('put', { path: '/canary/k', value: b64(`c${round}`) }, 600_000) : await conn.call('get', { path: '/canary/k' }, 600_000);
        canaryOutstanding = null;
        if (!running) break;
        const code = codeOf(answer);
        // Auth was enabled (or the token ran out) since it authenticated: it does again, as the
        // client library would, and that request counts as failed.
        if (code === 'UNAUTHENTICATED' && input.canaryAuth !== undefined) await conn.call('authenticate', { ...input.canaryAuth }, 10_000);
        canary.push([sent, kind, clock() - sent, code]);
        if (code === null) markReady('canary');
        else await sleep(10); // an error answers fast: do not spin
      }
      conn?.terminate();
    })();
  }

  port.on('message', (message: { kind: string; since?: number; ask?: number; writes?: boolean }) => {
    if (message.kind === 'canaryWrites') {
      canaryWrites = message.writes === true;
      // Answered once the request in flight (possibly a put) is done: after that, no canary write.
      const answer = (): void => {
        if (canaryOutstanding === null || canaryOutstanding[1] === 1) port.postMessage({ kind: 'canaryWrites', ask: message.ask });
        else setTimeout(answer, 5);
      };
      answer();
      return;
    }
    if (message.kind === 'stop') {
      running = false;
      clearInterval(procTimer);
      port.postMessage({ kind: 'stopped' });
      return;
    }
    if (message.kind !== 'snapshot') return;
    const since = message.since ?? 0;
    const at = clock();
    const snapshot: MonitorSnapshot = {
      at,
      probes: probes.map((list, i) => {
        const out = list.filter(([t]) => t >= since);
        const sent = probeOutstanding[i];
        if (sent !== null && sent !== undefined && sent >= since) out.push([sent, at - sent, 2]);
        return out;
      }),
      canary: [...canary.filter(([t]) => t >= since), ...(canaryOutstanding !== null && canaryOutstanding[0] >= since ? [[canaryOutstanding[0], canaryOutstanding[1], at - canaryOutstanding[0], 'OUTSTANDING'] as [number, number, number, string]] : [])],
      proc: proc.map((list) => list.filter(([t]) => t >= since)),
      status: status.filter(([t]) => t >= since),
    };
    port.postMessage({ kind: 'snapshot', ask: message.ask, snapshot });
  });
}

export class Monitor {
  private asks = 0;
  private readonly waiters = new Map<string, (message: { kind: string; ask?: number; snapshot?: MonitorSnapshot }) => void>();
  readonly startedAt = clock();

  private constructor(private readonly worker: Worker, readonly input: MonitorInput) {
    worker.on('message', (message: { kind: string; ask?: number; snapshot?: MonitorSnapshot }) => {
      const key = message.ask === undefined ? message.kind : `${message.kind}:${message.ask}`;
      const waiter = this.waiters.get(key);
      this.waiters.delete(key);
      waiter?.(message);
    });
    worker.on('error', (error: Error) => process.stderr.write(`the monitor worker failed: ${error.message}\n`));
    // A worker gone answers no one: every wait ends now instead of at its timeout.
    worker.on('exit', () => {
      for (const waiter of [...this.waiters.values()]) waiter({ kind: 'exited' });
      this.waiters.clear();
    });
  }

  /** Starts the worker; resolves once every probe and the canary had an ok answer (bounded). */
  static async start(input: MonitorInput, readyTimeoutMs = 30_000): Promise<Monitor> {
    // The worker loads this file through tsx's loader: a worker does not inherit --import or vitest's transform.
    const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
    const tsxApi = pathToFileURL(join(dirname(tsxPackage), 'dist/esm/api/index.mjs')).href;
    const boot = `const { workerData } = require('node:worker_threads');
import(workerData.tsxApi).then((m) => { m.register(); return import(workerData.entry); }).catch((e) => { console.error(e); process.exit(1); });`;
    const worker = new Worker(boot, { eval: true, workerData: { tsxApi, entry: import.meta.url, adversarialMonitor: input } });
    const monitor = new Monitor(worker, input);
    const ready = await monitor.waitFor('ready', readyTimeoutMs);
    if (ready === null || ready.kind !== 'ready') {
      await worker.terminate();
      throw new Error(`the monitor was not ready within ${readyTimeoutMs} ms (no ok answer from every probe and the canary)`);
    }
    return monitor;
  }

  private waitFor(key: string, timeoutMs: number): Promise<{ kind: string; snapshot?: MonitorSnapshot } | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        resolve(null);
      }, timeoutMs);
      this.waiters.set(key, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
    });
  }

  /** Everything recorded since `since` (a `clock()` time). */
  async snapshot(since: number, timeoutMs = 10_000): Promise<MonitorSnapshot> {
    const ask = ++this.asks;
    const answer = this.waitFor(`snapshot:${ask}`, timeoutMs);
    this.worker.postMessage({ kind: 'snapshot', since, ask });
    const message = await answer;
    if (message?.snapshot === undefined) throw new Error(`the monitor gave no snapshot within ${timeoutMs} ms`);
    return message.snapshot;
  }

  /** Turns the canary's puts off (it goes on with linearizable gets) or on again; resolves when no canary put is in flight. */
  async canaryWrites(writes: boolean, timeoutMs = 10_000): Promise<void> {
    const ask = ++this.asks;
    const answer = this.waitFor(`canaryWrites:${ask}`, timeoutMs);
    this.worker.postMessage({ kind: 'canaryWrites', writes, ask });
    if ((await answer)?.kind !== 'canaryWrites') throw new Error(`the canary did not ${writes ? 'resume' : 'pause'} its writes within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    const stopped = this.waitFor('stopped', 5_000);
    this.worker.postMessage({ kind: 'stop' });
    await stopped;
    await this.worker.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// What a snapshot says

const pct = (sorted: readonly number[], q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
const round1 = (x: number): number => Math.round(x * 10) / 10;

export interface WindowFigures {
  /** Per member: probe round trips sent in the window (p50, p99, max ms; n samples; error answers). */
  readonly probe: Record<string, { n: number; p50: number; p99: number; max: number; over: number; errors: number }>;
  readonly canary: { requests: number; maxMs: number; p99Ms: number; failures: Record<string, number>; slowest: string };
  /** Per member: RSS before `baselineUntil` (median) and the peak from then on, MiB. */
  readonly rssMiB: Record<string, { baseline: number | null; peak: number | null }>;
  /** Per member: CPU seconds used from `baselineUntil` to the end of the window. */
  readonly cpuS: Record<string, number | null>;
  /** The distinct (leader, term) pairs any member reported. */
  readonly leaders: string[];
  /** Per member: the highest commit index it reported. */
  readonly commit: Record<string, number | null>;
}

/** Figures for the window from `from` to the snapshot (RSS baseline: samples before `from`). */
export function windowFigures(snapshot: MonitorSnapshot, members: readonly MonitorMember[], from: number): WindowFigures {
  const probe: WindowFigures['probe'] = {};
  const rssMiB: WindowFigures['rssMiB'] = {};
  const cpuS: WindowFigures['cpuS'] = {};
  const commit: WindowFigures['commit'] = {};
  members.forEach((m, i) => {
    const samples = snapshot.probes[i]!.filter(([sent]) => sent >= from);
    const rtts = samples.map(([, rtt]) => rtt).sort((a, b) => a - b);
    probe[m.name] = { n: rtts.length, p50: round1(pct(rtts, 0.5)), p99: round1(pct(rtts, 0.99)), max: round1(rtts[rtts.length - 1] ?? NaN), over: rtts.filter((rtt) => rtt >= 100).length, errors: samples.filter(([, , s]) => s === 1).length };
    const proc = snapshot.proc[i]!;
    const before = proc.filter(([t]) => t < from).map(([, kib]) => kib).sort((a, b) => a - b);
    const during = proc.filter(([t]) => t >= from);
    rssMiB[m.name] = { baseline: before.length === 0 ? null : round1(pct(before, 0.5) / 1024), peak: during.length === 0 ? null : round1(Math.max(...during.map(([, kib]) => kib)) / 1024) };
    const cpuStart = [...proc].reverse().find(([t]) => t <= from)?.[2] ?? during[0]?.[2];
    const cpuEnd = proc[proc.length - 1]?.[2];
    cpuS[m.name] = cpuStart === undefined || cpuEnd === undefined ? null : Math.round((cpuEnd - cpuStart) * 100) / 100;
    const commits = snapshot.status.filter(([t, j]) => j === i && t >= from).map(([, , , , c]) => c).filter((c): c is number => c !== null);
    commit[m.name] = commits.length === 0 ? null : Math.max(...commits);
  });
  const canarySamples = snapshot.canary.filter(([sent]) => sent >= from);
  const latencies = canarySamples.map(([, , l]) => l).sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  for (const [, , , code] of canarySamples) if (code !== null && code !== 'OUTSTANDING') failures[code] = (failures[code] ?? 0) + 1;
  const slowest = canarySamples.reduce<[number, number, number, string | null] | null>((worst, s) => (worst === null || s[2] > worst[2] ? s : worst), null);
  const leaders = new Set<string>();
  for (const [t, , leader, term] of snapshot.status) if (t >= from && leader !== null) leaders.add(`${leader}@${String(term)}`);
  return {
    probe,
    canary: {
      requests: canarySamples.length,
      maxMs: round1(latencies[latencies.length - 1] ?? NaN),
      p99Ms: round1(pct(latencies, 0.99)),
      failures,
      slowest: slowest === null ? '—' : `${slowest[1] === 0 ? 'put' : 'get'} of ${round1(slowest[2])} ms at +${round1(slowest[0] - from)} ms`,
    },
    rssMiB,
    cpuS,
    leaders: [...leaders],
    commit,
  };
}

if (!isMainThread && (workerData as { adversarialMonitor?: MonitorInput } | null)?.adversarialMonitor !== undefined) {
  monitorWorker((workerData as { adversarialMonitor: MonitorInput }).adversarialMonitor);
}
