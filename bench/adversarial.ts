/**
 * `npm run bench:adversarial`: how a 3-member Warden cluster behaves under hostile clients.
 * Each case starts a fresh cluster (real `wardend` processes), prepares what it needs (not
 * counted), then runs one attack while a monitor measures, and stops the cluster.
 *
 * The monitor runs in a worker thread of this process, so the attack's own client work (parsing
 * a replay, a 180 MB answer) does not delay its figures:
 * - probe: one WebSocket per member sending `status` every 10 ms, one outstanding at a time;
 *   the round trip approximates the member's event-loop lag (p50 / p99 / max per member);
 * - canary: a client on a follower doing put /canary/k then a linearizable get, in a loop;
 * - memory: each member's VmRSS every 50 ms (baseline before the attack, peak after its start);
 * - leader changes: GET /status on every member every 100 ms, distinct (leader, term) pairs;
 * - crashes: any member process that exited; leader CPU (utime + stime) over the attack.
 * Figures cover the window from the attack's start to the monitor's stop (the attack, then a
 * settle of 2 s); CPU covers the attack alone.
 *
 * Only the raw client protocol is used (package ws), never server internals, so the same script
 * measures any version: a `register` answer carrying a `secret` has it put into every stamp, and
 * an attack refused early is reported with the error's code and message.
 *
 * Flags: --server PATH (a server/main.ts, e.g. another worktree's; default this tree's),
 * --cases deep-id,recursive-delete,deep-path-watch,watch-replay,big-answer,unread,answer-bound,sessions
 * (the default list; `deep-path` is deep-path-watch without the watch, for comparison),
 * --children 5000,10000,20000,100000 (recursive-delete sizes), --puts 50000 and --value-bytes 100
 * (watch-replay history; a list of sizes runs each),
 * --registers 100000 (sessions flood), --unread-max 1200 (gets sent per unread connection, a list
 * runs each), --json (one JSON line per case as well).
 *
 * Must never: wait without a bound; leave a member process or a data folder behind; use a
 * server module (the protocol alone); be read as a test.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { WebSocket, type RawData } from 'ws';
import { Cluster } from '../test/integration/cluster.js';

type Answer = Record<string, unknown>;
type Fields = Record<string, unknown>;
type Row = readonly [string, string];

/** Milliseconds on a clock shared by the main thread and the monitor worker. */
const clock = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const MiB = 1024 * 1024;

/** The error code of an answer, or null when it is ok. */
function codeOf(answer: Answer): string | null {
  if (answer['ok'] === true) return null;
  const error = answer['error'] as { code?: unknown } | undefined;
  return typeof error?.code === 'string' ? error.code : 'NO_CODE';
}
function brief(answer: Answer | null | undefined, max = 200): string {
  if (answer === null || answer === undefined) return '(none)';
  const code = codeOf(answer);
  if (code !== null) {
    const error = answer['error'] as { message?: unknown } | undefined;
    return `error ${code}: ${String(error?.message ?? '').slice(0, max)}`;
  }
  const text = JSON.stringify(answer);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

// ---------------------------------------------------------------------------------------------
// A raw protocol connection

class Conn {
  private nextId = 1;
  private readonly pending = new Map<number, (answer: Answer) => void>();
  private readonly closeWaiters: (() => void)[] = [];
  closed: { code: number; reason: string; at: number } | null = null;
  /** Frames that match no pending request (pushes, answers to raw or fire-and-forget frames). */
  onFrame: ((frame: Answer, bytes: number, text: string) => void) | null = null;
  bytesIn = 0;
  framesIn = 0;
  /** When the last frame had been received whole (before this client parsed it). */
  lastReceivedAt = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: RawData) => {
      this.lastReceivedAt = clock();
      const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      this.bytesIn += buffer.length;
      this.framesIn += 1;
      const text = buffer.toString();
      let frame: Answer;
      try {
        frame = JSON.parse(text) as Answer;
      } catch (error) {
        frame = { unparsable: (error as Error).message };
      }
      const id = frame['id'];
      const waiter = typeof id === 'number' ? this.pending.get(id) : undefined;
      if (waiter !== undefined) {
        this.pending.delete(id as number);
        waiter(frame);
      } else {
        this.onFrame?.(frame, buffer.length, text);
      }
    });
    socket.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString(), at: clock() };
      const waiters = [...this.pending.values()];
      this.pending.clear();
      for (const waiter of waiters) waiter({ ok: false, error: { code: 'CONNECTION_CLOSED', message: `closed ${code} ${reason.toString()}` } });
      for (const waiter of this.closeWaiters.splice(0)) waiter();
    });
    socket.on('error', () => undefined); // a 'close' follows
  }

  static open(url: string, options: { maxPayload?: number } = {}, timeoutMs = 10_000): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, ...(options.maxPayload === undefined ? {} : { maxPayload: options.maxPayload }) });
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`no connection to ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('open', () => {
        clearTimeout(timer);
        resolve(new Conn(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  get open(): boolean {
    return this.closed === null && this.socket.readyState === WebSocket.OPEN;
  }

  /** A request; resolves with its answer, or a client-side CLIENT_TIMEOUT / CONNECTION_CLOSED error. */
  call(type: string, fields: Fields = {}, timeoutMs = 30_000): Promise<Answer> {
    if (!this.open) return Promise.resolve({ ok: false, error: { code: 'CONNECTION_CLOSED', message: 'the connection is closed' } });
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: { code: 'CLIENT_TIMEOUT', message: `no answer to ${type} within ${timeoutMs} ms` } });
      }, timeoutMs);
      this.pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.socket.send(JSON.stringify({ id, type, ...fields }));
    });
  }

  /** A request whose answer goes to onFrame. */
  fire(type: string, fields: Fields = {}): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ id: this.nextId++, type, ...fields }));
  }

  sendRaw(text: string): void {
    this.socket.send(text);
  }

  /** Resolves true when the connection closed, false at the timeout. */
  whenClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  get tcp(): Socket {
    return (this.socket as unknown as { _socket: Socket })._socket;
  }

  terminate(): void {
    try {
      this.socket.terminate();
    } catch {
      // already gone
    }
  }
}

interface PipelineResult {
  readonly ok: number;
  readonly failed: number;
  readonly codes: Record<string, number>;
  readonly answers: Answer[];
  readonly ms: number;
}

/** `total` requests over one connection, `inFlight` at a time, bounded by a deadline. */
async function pipeline(
  conn: Conn,
  total: number,
  inFlight: number,
  make: (i: number) => readonly [string, Fields],
  options: { timeoutMs?: number; deadlineMs?: number; keep?: boolean } = {},
): Promise<PipelineResult> {
  const started = clock();
  const deadline = started + (options.deadlineMs ?? 600_000);
  const codes: Record<string, number> = {};
  const answers: Answer[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < total && clock() < deadline && conn.open) {
      const i = next++;
      const [type, fields] = make(i);
      const answer = await conn.call(type, fields, options.timeoutMs ?? 60_000);
      if (options.keep === true) answers[i] = answer;
      const code = codeOf(answer);
      if (code === null) ok += 1;
      else {
        failed += 1;
        codes[code] = (codes[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
  const unsent = total - ok - failed;
  if (unsent > 0) codes['NOT_SENT'] = unsent;
  return { ok, failed: failed + unsent, codes, answers, ms: clock() - started };
}

// ---------------------------------------------------------------------------------------------
// The monitor (a worker thread)

interface MonitorMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly httpUrl: string;
  readonly pid: number;
}
interface MonitorInput {
  readonly members: MonitorMember[];
  readonly canaryUrl: string;
  readonly clkTck: number;
}
interface MonitorResult {
  readonly startedAt: number;
  readonly stoppedAt: number;
  /** Per member: [sentAt, rttMs, state] with state 0 answered ok, 1 error answer, 2 still outstanding at stop. */
  readonly probes: [number, number, number][][];
  readonly probeReconnects: number[];
  /** [sentAt, kind 0 put / 1 get, latencyMs, error code or null ('OUTSTANDING' when unanswered at stop)]. */
  readonly canary: [number, number, number, string | null][];
  /** Per member: [t, rssKiB, cpuSeconds]. */
  readonly proc: [number, number, number][][];
  /** [t, member index, leader, term]; leader null when unknown or the member did not answer. */
  readonly status: [number, number, string | null, number | null][];
}

function readRssKiB(pid: number): number | null {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line === undefined ? null : Number(line.split(/\s+/)[1]);
  } catch {
    return null;
  }
}
function readCpuSeconds(pid: number, clkTck: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clkTck; // utime + stime, in clock ticks
  } catch {
    return null;
  }
}

function monitorWorker(input: MonitorInput): void {
  const port = parentPort!;
  let running = true;
  const startedAt = clock();
  const probes: [number, number, number][][] = input.members.map(() => []);
  const probeOutstanding: (number | null)[] = input.members.map(() => null);
  const probeReconnects = input.members.map(() => 0);
  const canary: [number, number, number, string | null][] = [];
  let canaryOutstanding: [number, number] | null = null;
  const proc: [number, number, number][][] = input.members.map(() => []);
  const status: [number, number, string | null, number | null][] = [];
  const ready = new Set<string>();
  const markReady = (what: string): void => {
    if (ready.has(what)) return;
    ready.add(what);
    if (ready.size === input.members.length + 1) port.postMessage({ kind: 'ready' });
  };

  const procTimer = setInterval(() => {
    const t = clock();
    input.members.forEach((m, i) => {
      const rss = readRssKiB(m.pid);
      const cpu = readCpuSeconds(m.pid, input.clkTck);
      if (rss !== null && cpu !== null) proc[i]!.push([t, rss, cpu]);
    });
  }, 50);

  input.members.forEach((m, i) => {
    void (async () => {
      while (running) {
        const t = clock();
        try {
          const response = await fetch(`${m.httpUrl}/status`, { signal: AbortSignal.timeout(1_000) });
          const body = (await response.json()) as { leader?: unknown; term?: unknown };
          if (!running) break;
          status.push([t, i, typeof body.leader === 'string' ? body.leader : null, typeof body.term === 'number' ? body.term : null]);
        } catch {
          if (!running) break;
          status.push([t, i, null, null]);
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
            if (conn !== null) probeReconnects[i]! += 1;
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
    })();
  });

  void (async () => {
    let conn: Conn | null = null;
    let url = input.canaryUrl;
    let round = 0;
    while (running) {
      if (conn === null || !conn.open) {
        try {
          conn = await Conn.open(url, {}, 2_000);
        } catch {
          // its member may be gone: try the next one
          const index = input.members.findIndex((m) => m.clientUrl === url);
          url = input.members[(index + 1) % input.members.length]!.clientUrl;
          await sleep(200);
          continue;
        }
      }
      const kind = round++ % 2;
      const sent = clock();
      canaryOutstanding = [sent, kind];
      const answer = kind === 0 ? await conn.call('put', { path: '/canary/k', value: b64('c') }, 600_000) : await conn.call('get', { path: '/canary/k' }, 600_000);
      canaryOutstanding = null;
      if (!running) break;
      const code = codeOf(answer);
      canary.push([sent, kind, clock() - sent, code]);
      if (code === null) markReady('canary');
      else await sleep(10); // an error answers fast: do not spin
    }
  })();

  port.on('message', (message: unknown) => {
    if (message !== 'stop') return;
    running = false;
    clearInterval(procTimer);
    const stoppedAt = clock();
    probeOutstanding.forEach((sent, i) => {
      if (sent !== null) probes[i]!.push([sent, stoppedAt - sent, 2]);
    });
    if (canaryOutstanding !== null) canary.push([canaryOutstanding[0], canaryOutstanding[1], stoppedAt - canaryOutstanding[0], 'OUTSTANDING']);
    const result: MonitorResult = { startedAt, stoppedAt, probes, probeReconnects, canary, proc, status };
    port.postMessage({ kind: 'result', result });
  });
}

class Monitor {
  private constructor(private readonly worker: Worker, private readonly messages: { kind: string; result?: MonitorResult }[], private readonly waiters: (() => void)[]) {}

  static async start(input: MonitorInput, readyTimeoutMs = 20_000): Promise<Monitor> {
    const tsxApi = import.meta.resolve('tsx/esm/api');
    // The worker loads this same file through tsx's loader (a worker does not inherit --import).
    const boot = `const { workerData } = require('node:worker_threads');
import(workerData.tsxApi).then((m) => { m.register(); return import(workerData.entry); }).catch((e) => { console.error(e); process.exit(1); });`;
    const worker = new Worker(boot, { eval: true, workerData: { tsxApi, entry: import.meta.url, monitor: input } });
    const messages: { kind: string; result?: MonitorResult }[] = [];
    const waiters: (() => void)[] = [];
    worker.on('message', (message: { kind: string; result?: MonitorResult }) => {
      messages.push(message);
      for (const waiter of waiters.splice(0)) waiter();
    });
    worker.on('error', (error: Error) => process.stderr.write(`monitor worker failed: ${error.message}\n`));
    const monitor = new Monitor(worker, messages, waiters);
    if (!(await monitor.waitFor('ready', readyTimeoutMs))) {
      await worker.terminate();
      throw new Error(`the monitor was not ready within ${readyTimeoutMs} ms`);
    }
    return monitor;
  }

  private async waitFor(kind: string, timeoutMs: number): Promise<boolean> {
    const deadline = clock() + timeoutMs;
    while (!this.messages.some((m) => m.kind === kind)) {
      const left = deadline - clock();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  async stop(): Promise<MonitorResult | null> {
    this.worker.postMessage('stop');
    const got = await this.waitFor('result', 20_000);
    await this.worker.terminate();
    return got ? this.messages.find((m) => m.kind === 'result')!.result! : null;
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// Figures from a monitor's record

const pct = (sorted: readonly number[], q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
const round1 = (x: number): number => Math.round(x * 10) / 10;
const ms = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? '—' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x >= 100 ? Math.round(x) : x.toFixed(1)} ms`);

interface Marks {
  readonly attackStart: number;
  readonly attackEnd: number;
}

interface CommonFigures {
  /** Round trips of status probes sent in the window; one still unanswered at the stop counts with its time so far. */
  probe: { perMember: Record<string, { n: number; p50: number; p99: number; max: number; errors: number; outstandingAtStop: boolean }>; worst: string | null; worstMaxMs: number };
  canary: { member: string; puts: number; gets: number; putMaxMs: number; putP99Ms: number; getMaxMs: number; getP99Ms: number; failures: Record<string, number> };
  memory: { leader: string; leaderBaselineMiB: number | null; leaderPeakMiB: number | null; worst: string | null; worstBaselineMiB: number | null; worstPeakMiB: number | null; perMember: Record<string, { baselineMiB: number | null; peakMiB: number | null }> };
  leaderChanges: number;
  leaderTerms: string[];
  crashes: { member: string; code: number | null; signal: string | null; atS: number; lastLogs: string[] }[];
  leaderCpuS: number | null;
  memberCpuS: Record<string, number | null>;
  attackWallMs: number;
  windowMs: number;
  benchLagMaxMs: number;
}

function figures(
  result: MonitorResult | null,
  marks: Marks,
  members: MonitorMember[],
  leader: string,
  canaryUrl: string,
  cpu: { start: (number | null)[]; end: (number | null)[] },
  crashes: { member: string; code: number | null; signal: string | null; at: number; lastLogs: string[] }[],
  benchLagMaxMs: number,
): CommonFigures {
  const empty = result === null;
  const stop = result?.stoppedAt ?? clock();
  const perMember: CommonFigures['probe']['perMember'] = {};
  let worst: string | null = null;
  let worstMaxMs = -1;
  members.forEach((m, i) => {
    const samples = empty ? [] : result.probes[i]!.filter(([sent]) => sent >= marks.attackStart);
    const rtts = samples.map(([, rtt]) => rtt).sort((a, b) => a - b);
    const max = rtts.length === 0 ? NaN : rtts[rtts.length - 1]!;
    perMember[m.name] = { n: rtts.length, p50: round1(pct(rtts, 0.5)), p99: round1(pct(rtts, 0.99)), max: round1(max), errors: samples.filter(([, , s]) => s === 1).length, outstandingAtStop: samples.some(([, rtt, s]) => s === 2 && rtt >= 100) };
    if (max > worstMaxMs) {
      worstMaxMs = max;
      worst = m.name;
    }
  });

  const canarySamples = empty ? [] : result.canary.filter(([sent]) => sent >= marks.attackStart);
  const lat = (kind: number): number[] => canarySamples.filter(([, k]) => k === kind).map(([, , l]) => l).sort((a, b) => a - b);
  const puts = lat(0);
  const gets = lat(1);
  const failures: Record<string, number> = {};
  // The request in flight when the monitor stopped is not a failure; its latency so far counts.
  for (const [, , , code] of canarySamples) if (code !== null && code !== 'OUTSTANDING') failures[code] = (failures[code] ?? 0) + 1;

  const memPerMember: CommonFigures['memory']['perMember'] = {};
  let worstMem: string | null = null;
  let worstPeak = -1;
  members.forEach((m, i) => {
    const samples = empty ? [] : result.proc[i]!;
    const before = samples.filter(([t]) => t < marks.attackStart).map(([, kib]) => kib).sort((a, b) => a - b);
    const during = samples.filter(([t]) => t >= marks.attackStart).map(([, kib]) => kib);
    const baselineMiB = before.length === 0 ? null : round1(pct(before, 0.5) / 1024);
    const peakMiB = during.length === 0 ? null : round1(Math.max(...during) / 1024);
    memPerMember[m.name] = { baselineMiB, peakMiB };
    if (peakMiB !== null && peakMiB > worstPeak) {
      worstPeak = peakMiB;
      worstMem = m.name;
    }
  });

  const pairs = new Set<string>();
  for (const [t, , l, term] of empty ? [] : result.status) if (t <= stop && l !== null) pairs.add(`${l}@${String(term)}`);

  const leaderIndex = members.findIndex((m) => m.name === leader);
  const cpuOf = (i: number): number | null => {
    let start = cpu.start[i] ?? null;
    let end = cpu.end[i] ?? null;
    const samples = empty ? [] : result.proc[i]!;
    // a member that exited before a mark: its last sample before the mark
    if (start === null) start = [...samples].reverse().find(([t]) => t <= marks.attackStart)?.[2] ?? null;
    if (end === null) end = [...samples].reverse().find(([t]) => t <= marks.attackEnd)?.[2] ?? null;
    // (a sample from before the mark can read a tick lower than the mark's own read)
    return start === null || end === null ? null : Math.max(0, Math.round((end - start) * 100) / 100);
  };
  const memberCpuS: Record<string, number | null> = {};
  members.forEach((m, i) => (memberCpuS[m.name] = cpuOf(i)));

  return {
    probe: { perMember, worst, worstMaxMs: round1(worstMaxMs) },
    canary: {
      member: members.find((m) => m.clientUrl === canaryUrl)?.name ?? canaryUrl,
      puts: puts.length,
      gets: gets.length,
      putMaxMs: round1(puts[puts.length - 1] ?? NaN),
      putP99Ms: round1(pct(puts, 0.99)),
      getMaxMs: round1(gets[gets.length - 1] ?? NaN),
      getP99Ms: round1(pct(gets, 0.99)),
      failures,
    },
    memory: {
      leader,
      leaderBaselineMiB: memPerMember[leader]?.baselineMiB ?? null,
      leaderPeakMiB: memPerMember[leader]?.peakMiB ?? null,
      worst: worstMem,
      worstBaselineMiB: worstMem === null ? null : memPerMember[worstMem]!.baselineMiB,
      worstPeakMiB: worstMem === null ? null : memPerMember[worstMem]!.peakMiB,
      perMember: memPerMember,
    },
    leaderChanges: Math.max(0, pairs.size - 1),
    leaderTerms: [...pairs],
    crashes: crashes.map((c) => ({ member: c.member, code: c.code, signal: c.signal, atS: round1((c.at - marks.attackStart) / 1000), lastLogs: c.lastLogs })),
    leaderCpuS: leaderIndex < 0 ? null : cpuOf(leaderIndex),
    memberCpuS,
    attackWallMs: round1(marks.attackEnd - marks.attackStart),
    windowMs: Math.round(stop - marks.attackStart),
    benchLagMaxMs: round1(benchLagMaxMs),
  };
}

// ---------------------------------------------------------------------------------------------
// The cases

interface Ctx {
  readonly cluster: Cluster;
  leader: string;
  leaderUrl: string;
  followerUrl: string;
  /** A connection closed by the runner after the case. */
  open(url: string, options?: { maxPayload?: number }): Promise<Conn>;
  /** What setup hands to the attack. */
  readonly state: Record<string, unknown>;
}

interface AttackOutcome {
  readonly details: Record<string, unknown>;
  readonly rows: Row[];
}

interface CaseSpec {
  readonly name: string;
  readonly label: string;
  readonly params: Record<string, unknown>;
  /** The attack's own bound (it is also raced against this). */
  readonly limitMs: number;
  setup?(ctx: Ctx): Promise<void>;
  attack(ctx: Ctx): Promise<AttackOutcome>;
}

/** Session fields from a `register` answer; the secret is carried when the server gives one. */
interface Session {
  readonly id: number;
  readonly secret?: unknown;
}
function sessionOf(answer: Answer): Session {
  if (codeOf(answer) !== null) throw new Error(`register refused: ${brief(answer)}`);
  const id = (answer['clientId'] ?? (answer['client'] as { id?: unknown } | undefined)?.id) as number;
  return answer['secret'] === undefined ? { id } : { id, secret: answer['secret'] };
}
function stamp(session: Session, seq: number, ackedThrough: number, secret: unknown = session.secret): Fields {
  return { id: session.id, seq, ackedThrough, ...(secret === undefined ? {} : { secret }) };
}
function forged(secret: unknown): unknown {
  if (typeof secret === 'number') return secret + 1;
  if (typeof secret === 'string' && secret.length > 0) return secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A');
  return 'forged';
}

const ONE_MIB_VALUE = Buffer.alloc(MiB, 0x78).toString('base64');

async function putBigValue(ctx: Ctx, path: string): Promise<void> {
  const conn = await ctx.open(ctx.leaderUrl);
  const answer = await conn.call('put', { path, value: ONE_MIB_VALUE }, 60_000);
  if (codeOf(answer) !== null) throw new Error(`setup put ${path} of 1 MiB: ${brief(answer)}`);
}

const DEEP_ID_DEPTH = 5_000;

const deepId: CaseSpec = {
  name: 'deep-id',
  label: `deep-id: one status frame whose id is an array nested ${DEEP_ID_DEPTH} deep, sent to the leader`,
  params: { depth: DEEP_ID_DEPTH },
  limitMs: 60_000,
  async attack(ctx) {
    const conn = await ctx.open(ctx.leaderUrl);
    let first: { bytes: number; head: string } | null = null;
    const answered = new Promise<void>((resolve) => {
      conn.onFrame = (_frame, bytes, text) => {
        first ??= { bytes, head: text.slice(0, 160) };
        resolve();
      };
    });
    const text = `{"id":${'['.repeat(DEEP_ID_DEPTH)}${']'.repeat(DEEP_ID_DEPTH)},"type":"status"}`;
    const t0 = clock();
    conn.sendRaw(text);
    await Promise.race([answered, conn.whenClosed(10_000)]);
    const wallMs = clock() - t0;
    await sleep(3_000); // a member that is dying has time to exit
    const alive = ctx.cluster.member(ctx.leader).process !== null;
    const got = first as { bytes: number; head: string } | null;
    const closed = conn.closed === null ? null : { code: conn.closed.code, reason: conn.closed.reason, afterMs: round1(conn.closed.at - t0) };
    return {
      details: { target: ctx.leader, wallMs: round1(wallMs), answer: got, closed, targetAlive: alive },
      rows: [
        ['target', `${ctx.leader} (leader)`],
        ['came back', got === null ? 'no frame' : `${got.bytes} B: ${got.head}`],
        ['connection', closed === null ? 'open' : `closed ${closed.code} "${closed.reason}" after ${ms(closed.afterMs)}`],
        ['wall', ms(wallMs)],
        ['target alive 3 s later', alive ? 'yes' : 'NO (exited)'],
      ],
    };
  },
};

function recursiveDelete(children: number): CaseSpec {
  return {
    name: `recursive-delete@${children}`,
    label: `recursive-delete: /big with ${children.toLocaleString('en')} children, then one recursive delete on the leader`,
    params: { children },
    limitMs: 900_000,
    async setup(ctx) {
      const conn = await ctx.open(ctx.leaderUrl);
      const root = await conn.call('put', { path: '/big' });
      if (codeOf(root) !== null) throw new Error(`setup put /big: ${brief(root)}`);
      const txns = Math.ceil(children / 100);
      const r = await pipeline(
        conn,
        txns,
        16,
        (k) => ['txn', { success: Array.from({ length: Math.min(100, children - k * 100) }, (_, j) => ({ op: 'create', path: `/big/c${String(k * 100 + j).padStart(7, '0')}` })) }],
        { timeoutMs: 60_000, deadlineMs: 600_000 },
      );
      if (r.failed > 0) throw new Error(`setup creates failed: ${JSON.stringify(r.codes)}`);
      ctx.state['setupMs'] = round1(r.ms);
    },
    async attack(ctx) {
      let conn = await ctx.open(ctx.leaderUrl);
      const t0 = clock();
      const answer = await conn.call('delete', { path: '/big', recursive: true }, 600_000);
      const answerMs = clock() - t0;
      // When is /big gone, as a linearizable read on the leader of the moment sees it? After an
      // ok, until it is (bounded); after a refusal, a short look only (it may have been applied).
      let goneMs: number | null = null;
      const pollUntil = codeOf(answer) === null ? t0 + 600_000 : clock() + 15_000;
      while (clock() < pollUntil) {
        const leader = await ctx.cluster.leader(30_000).catch(() => null);
        if (leader !== null) {
          const url = ctx.cluster.member(leader).clientUrl;
          if (!conn.open || conn.socket.url !== url) conn = await ctx.open(url).catch(() => conn);
          const got = await conn.call('get', { path: '/big' }, 30_000);
          if (codeOf(got) === 'NO_NODE') {
            goneMs = clock() - t0;
            break;
          }
        }
        await sleep(200);
      }
      return {
        details: { children, setupMs: ctx.state['setupMs'], answer: brief(answer, 300), answerCode: codeOf(answer), deleted: answer['deleted'] ?? null, answerMs: round1(answerMs), goneMs: goneMs === null ? null : round1(goneMs) },
        rows: [
          ['children', `${children.toLocaleString('en')} (setup ${ms(ctx.state['setupMs'] as number)}, not counted)`],
          ['delete answer', `${brief(answer, 160)} after ${ms(answerMs)}`],
          ['/big gone after', goneMs === null ? `still there ${ms(clock() - t0)} after the delete was sent` : ms(goneMs)],
        ],
      };
    },
  };
}

const DEEP_LEVELS = 2_000;

/** With `watch` false (case deep-path, not in the default list): the same writes with no watch, for comparison. */
function deepPath(watch: boolean): CaseSpec {
  return {
    name: watch ? 'deep-path-watch' : 'deep-path',
    label: `${watch ? 'deep-path-watch: an unrelated subtree watch, then a' : 'deep-path: no watch, a'} put ${DEEP_LEVELS} levels deep and a recursive delete of it (leader)`,
    params: { levels: DEEP_LEVELS, watch },
    limitMs: 300_000,
    async setup(ctx) {
      if (!watch) {
        ctx.state['pushes'] = (): number => 0;
        return;
      }
      const watcher = await ctx.open(ctx.leaderUrl);
      let pushes = 0;
      watcher.onFrame = () => void (pushes += 1);
      const answer = await watcher.call('watch', { watchId: 1, path: '/unrelated', scope: 'subtree' }, 30_000);
      if (codeOf(answer) !== null) throw new Error(`setup watch: ${brief(answer)}`);
      ctx.state['pushes'] = (): number => pushes;
    },
    async attack(ctx) {
      const conn = await ctx.open(ctx.leaderUrl);
      const path = '/a'.repeat(DEEP_LEVELS);
      const t0 = clock();
      const put = await conn.call('put', { path, value: b64('x') }, 120_000);
      const putMs = clock() - t0;
      const t1 = clock();
      const del = await conn.call('delete', { path: '/a', recursive: true }, 120_000);
      const delMs = clock() - t1;
      const pushes = (ctx.state['pushes'] as () => number)();
      return {
        details: { levels: DEEP_LEVELS, putMs: round1(putMs), put: brief(put, 200), putCode: codeOf(put), deleteMs: round1(delMs), delete: brief(del, 200), deleteCode: codeOf(del), deleted: del['deleted'] ?? null, unrelatedWatchPushes: pushes },
        rows: [
          ['put (2,000 levels)', `${codeOf(put) ?? 'ok'} after ${ms(putMs)}${codeOf(put) === null ? '' : `: ${brief(put, 120)}`}`],
          ['delete /a recursive', `${codeOf(del) ?? `ok, deleted ${String(del['deleted'])}`} after ${ms(delMs)}${codeOf(del) === null ? '' : `: ${brief(del, 120)}`}`],
          ...(watch ? [['pushes to the unrelated watch', String(pushes)] as Row] : []),
        ],
      };
    },
  };
}

function watchReplay(puts: number, valueBytes: number): CaseSpec {
  return {
    name: valueBytes === 100 ? 'watch-replay' : `watch-replay@${valueBytes}B`,
    label: `watch-replay: ${puts.toLocaleString('en')} puts of ${valueBytes} B of history, then a subtree watch on / from revision 1 on the leader, read at full speed`,
    params: { puts, keys: 1_000, valueBytes },
    limitMs: 300_000,
    async setup(ctx) {
      const conn = await ctx.open(ctx.leaderUrl);
      const value = b64('v'.repeat(valueBytes));
      const r = await pipeline(conn, puts, 64, (i) => ['put', { path: `/r/k${String(i % 1_000).padStart(4, '0')}`, value }], { timeoutMs: 60_000, deadlineMs: 600_000 });
      if (r.failed > 0) throw new Error(`setup puts failed: ${JSON.stringify(r.codes)}`);
      ctx.state['setupMs'] = round1(r.ms);
    },
    async attack(ctx) {
      const statusConn = await ctx.open(ctx.leaderUrl);
      const statusAnswer = await statusConn.call('status', {}, 30_000);
      const target = Number(statusAnswer['revision']);
      // The concurrent putter: one put at a time on the leader.
      const putter = await ctx.open(ctx.leaderUrl);
      const putLatencies: number[] = [];
      const putFailures: Record<string, number> = {};
      let putting = true;
      const putterDone = (async () => {
        const until = clock() + 240_000;
        while (putting && clock() < until) {
          const sent = clock();
          const a = await putter.call('put', { path: '/p/k', value: b64('p') }, 60_000);
          putLatencies.push(clock() - sent);
          const code = codeOf(a);
          if (code !== null) {
            putFailures[code] = (putFailures[code] ?? 0) + 1;
            await sleep(10);
          }
        }
      })();

      const watcher = await ctx.open(ctx.leaderUrl);
      let lastRevision = 0;
      let events = 0;
      let eventFrames = 0;
      let cancels = 0;
      let resumes = 0;
      let watchId = 1;
      const cancelCodes: Record<string, number> = {};
      const refusals: string[] = [];
      let finish: (why: string) => void = () => undefined;
      const finished = new Promise<string>((resolve) => (finish = resolve));
      const startWatch = (fromRevision: number): void => {
        void watcher.call('watch', { watchId, path: '/', scope: 'subtree', fromRevision }, 120_000).then((a) => {
          if (codeOf(a) !== null) {
            refusals.push(brief(a, 200));
            finish(`watch refused: ${brief(a, 120)}`);
          }
        });
      };
      watcher.onFrame = (frame) => {
        if (frame['watch'] === undefined) return;
        if (frame['canceled'] === true) {
          cancels += 1;
          const code = typeof frame['code'] === 'string' ? frame['code'] : 'NO_CODE';
          cancelCodes[code] = (cancelCodes[code] ?? 0) + 1;
          const resumeRevision = Number(frame['resumeRevision']);
          if (code === 'SLOW_CONSUMER' && resumes < 50 && Number.isInteger(resumeRevision) && resumeRevision >= 1) {
            resumes += 1;
            watchId += 1;
            startWatch(resumeRevision);
          } else {
            finish(`cancelled ${code} (resumes ${resumes})`);
          }
          return;
        }
        const list = frame['events'];
        if (Array.isArray(list)) {
          eventFrames += 1;
          events += list.length;
          lastRevision = Math.max(lastRevision, Number(frame['revision']));
          if (lastRevision >= target) finish('caught up');
        }
      };
      const t0 = clock();
      startWatch(1);
      const timer = setTimeout(() => finish('not caught up within 180 s'), 180_000);
      const outcome = await Promise.race([finished, watcher.whenClosed(181_000).then(() => `watcher connection closed ${String(watcher.closed?.code)} ${watcher.closed?.reason ?? ''}`)]);
      clearTimeout(timer);
      const catchUpMs = clock() - t0;
      await sleep(500);
      putting = false;
      await Promise.race([putterDone, sleep(61_000)]);
      const sorted = [...putLatencies].sort((a, b) => a - b);
      return {
        details: {
          puts,
          setupMs: ctx.state['setupMs'],
          targetRevision: target,
          outcome,
          catchUpMs: round1(catchUpMs),
          lastRevision,
          events,
          eventFrames,
          bytesRead: watcher.bytesIn,
          cancels,
          cancelCodes,
          resumes,
          refusals,
          putter: { puts: sorted.length, maxMs: round1(sorted[sorted.length - 1] ?? NaN), p99Ms: round1(pct(sorted, 0.99)), p50Ms: round1(pct(sorted, 0.5)), failures: putFailures },
        },
        rows: [
          ['history', `${puts.toLocaleString('en')} puts (setup ${ms(ctx.state['setupMs'] as number)}, not counted); target revision ${target}`],
          ['watcher', `${outcome} after ${ms(catchUpMs)}; revision ${lastRevision}, ${events.toLocaleString('en')} events in ${eventFrames.toLocaleString('en')} frames, ${(watcher.bytesIn / MiB).toFixed(1)} MiB read`],
          ['cancels', `${cancels} ${JSON.stringify(cancelCodes)}, resumes ${resumes}${refusals.length > 0 ? `; refused: ${refusals.join(' | ')}` : ''}`],
          ['concurrent putter', `${sorted.length} puts, p50 ${ms(pct(sorted, 0.5))}, p99 ${ms(pct(sorted, 0.99))}, max ${ms(sorted[sorted.length - 1])}, failures ${JSON.stringify(putFailures)}`],
        ],
      };
    },
  };
}

const bigAnswer: CaseSpec = {
  name: 'big-answer',
  label: 'big-answer: a 1 MiB value at /big1, then one txn of 128 gets of it, on the leader',
  params: { valueBytes: MiB, gets: 128 },
  limitMs: 400_000,
  async setup(ctx) {
    await putBigValue(ctx, '/big1');
  },
  async attack(ctx) {
    const conn = await ctx.open(ctx.leaderUrl, { maxPayload: 1024 * MiB });
    const t0 = clock();
    const answer = await conn.call('txn', { success: Array.from({ length: 128 }, () => ({ op: 'get', path: '/big1' })) }, 300_000);
    const wallMs = clock() - t0;
    const receivedMs = conn.framesIn > 0 ? conn.lastReceivedAt - t0 : null;
    const bytes = conn.bytesIn;
    const code = codeOf(answer);
    const results = Array.isArray(answer['results']) ? (answer['results'] as unknown[]).length : null;
    const shown = code === null ? `ok, ${String(results ?? '?')} results` : brief(answer, 200);
    const closed = conn.closed === null ? null : { code: conn.closed.code, reason: conn.closed.reason };
    return {
      details: { wallMs: round1(wallMs), receivedMs: receivedMs === null ? null : round1(receivedMs), answerCode: code, answer: shown, answerBytes: bytes, results, closed },
      rows: [
        ['txn answer', `${shown}: whole frame received after ${ms(receivedMs)}, parsed by this client after ${ms(wallMs)}`],
        ['answer size', `${(bytes / MiB).toFixed(1)} MiB`],
        ['connection', closed === null ? 'open' : `closed ${closed.code} "${closed.reason}"`],
      ],
    };
  },
};

const UNREAD_CONNECTIONS = 10;
const UNREAD_FIRST = 200;
const UNREAD_MORE = 100;
const UNREAD_SEND_MS = 5_000;

function unread(maxPerConnection: number): CaseSpec {
  return {
    name: maxPerConnection === 1_200 ? 'unread' : `unread@${maxPerConnection}`,
    label: `unread: ${UNREAD_CONNECTIONS} connections to the leader stop reading and pipeline gets of a 1 MiB node (at most ${maxPerConnection} each) for ${UNREAD_SEND_MS / 1000} s`,
    params: { connections: UNREAD_CONNECTIONS, first: UNREAD_FIRST, topUp: UNREAD_MORE, maxPerConnection, sendMs: UNREAD_SEND_MS },
    limitMs: 120_000,
    async setup(ctx) {
      await putBigValue(ctx, '/big1');
    },
    async attack(ctx) {
      const conns = await Promise.all(Array.from({ length: UNREAD_CONNECTIONS }, () => ctx.open(ctx.leaderUrl)));
      const tallies = conns.map(() => ({ ok: 0, codes: {} as Record<string, number>, sent: 0 }));
      conns.forEach((c, i) => {
        c.onFrame = (frame) => {
          const code = codeOf(frame);
          if (code === null) tallies[i]!.ok += 1;
          else tallies[i]!.codes[code] = (tallies[i]!.codes[code] ?? 0) + 1;
        };
        c.tcp.pause();
      });
      const send = (i: number, n: number): void => {
        const c = conns[i]!;
        const count = Math.min(n, maxPerConnection - tallies[i]!.sent);
        for (let k = 0; k < count; k++) c.fire('get', { path: '/big1' });
        tallies[i]!.sent += count;
      };
      const t0 = clock();
      conns.forEach((_, i) => send(i, UNREAD_FIRST));
      while (clock() - t0 < UNREAD_SEND_MS) {
        await sleep(500);
        conns.forEach((_, i) => send(i, UNREAD_MORE));
      }
      const resumedAtMs = clock() - t0;
      for (const c of conns) c.tcp.resume();
      await Promise.all(conns.map((c) => c.whenClosed(20_000)));
      const per = conns.map((c, i) => ({
        sent: tallies[i]!.sent,
        answersOk: tallies[i]!.ok,
        errors: tallies[i]!.codes,
        closed: c.closed === null ? null : { code: c.closed.code, reason: c.closed.reason, seenAtMs: round1(c.closed.at - t0) },
        bytesRead: c.bytesIn,
      }));
      for (const c of conns) if (c.open) c.terminate();
      const closedCount = per.filter((p) => p.closed !== null).length;
      const reasons = [...new Set(per.filter((p) => p.closed !== null).map((p) => `${p.closed!.code} "${p.closed!.reason}"`))];
      const errors: Record<string, number> = {};
      for (const p of per) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
      return {
        details: { resumedAtMs: round1(resumedAtMs), closedCount, reasons, perConnection: per },
        rows: [
          ['sent', `${per.map((p) => p.sent).reduce((a, b) => a + b, 0).toLocaleString('en')} gets over ${UNREAD_CONNECTIONS} connections (${UNREAD_FIRST} each, +${UNREAD_MORE} every 0.5 s, cap ${maxPerConnection})`],
          ['closed by the server', `${closedCount}/${UNREAD_CONNECTIONS}${reasons.length > 0 ? `: ${reasons.join(', ')}` : ''} (seen after the sockets resumed reading at ${ms(resumedAtMs)}; a close sent while paused cannot be seen earlier)`],
          ['answers read after resuming', `ok ${per.map((p) => p.answersOk).join('/')}; errors ${JSON.stringify(errors)}`],
        ],
      };
    },
  };
}

const ANSWER_BOUND_WRITES = 1_100;

const answerBound: CaseSpec = {
  name: 'answer-bound',
  label: `answer-bound: a session, ${ANSWER_BOUND_WRITES.toLocaleString('en')} stamped sequential creates (ackedThrough 0), then seq 1 retried`,
  params: { writes: ANSWER_BOUND_WRITES },
  limitMs: 180_000,
  async attack(ctx) {
    const conn = await ctx.open(ctx.leaderUrl);
    const session = sessionOf(await conn.call('register', {}, 30_000));
    const create = (seq: number): Fields => ({ path: '/seq/n-', sequential: true, parents: true, client: stamp(session, seq, 0) });
    const r = await pipeline(conn, ANSWER_BOUND_WRITES, ANSWER_BOUND_WRITES, (i) => ['create', create(i + 1)], { timeoutMs: 60_000, deadlineMs: 120_000, keep: true });
    const firstPath = ((r.answers[0]?.['node'] as { path?: unknown } | undefined)?.path as string | undefined) ?? null;
    const t0 = clock();
    const retry = await conn.call('create', create(1), 30_000);
    const retryMs = clock() - t0;
    const retryPath = ((retry['node'] as { path?: unknown } | undefined)?.path as string | undefined) ?? null;
    const children = await conn.call('children', { path: '/seq' }, 30_000);
    const count = Array.isArray(children['names']) ? (children['names'] as unknown[]).length : null;
    const created = r.ok;
    const verdict =
      count === created + 1 || (retryPath !== null && retryPath !== firstPath)
        ? 'BUG: the retry was applied twice'
        : retryPath !== null && retryPath === firstPath
          ? 'correct: the retry answered its recorded result'
          : `the retry was refused (${String(codeOf(retry))}); ${String(count)} nodes for ${created} creates accepted`;
    return {
      details: { session: { id: session.id, secret: session.secret !== undefined }, createsOk: r.ok, createCodes: r.codes, createsMs: round1(r.ms), firstPath, retry: brief(retry, 200), retryPath, retryMs: round1(retryMs), children: count, verdict },
      rows: [
        ['session', `${session.id}${session.secret === undefined ? ' (no secret in the register answer)' : ' (with a secret)'}`],
        ['creates', `${r.ok} ok ${JSON.stringify(r.codes)} in ${ms(r.ms)}; seq 1 made ${String(firstPath)}`],
        ['retry of seq 1', `${brief(retry, 160)} (${ms(retryMs)})`],
        ['nodes under /seq', `${String(count)} (1,100 correct; 1,101 = retry applied twice) — ${verdict}`],
      ],
    };
  },
};

function sessions(registers: number): CaseSpec {
  return {
    name: 'sessions',
    label: `sessions: (a) a write stamped with another connection's session; (b) ${registers.toLocaleString('en')} registers flood, then a live client's next write`,
    params: { registers, floodConnections: 4, inFlightPerConnection: 1_000 },
    limitMs: 600_000,
    async attack(ctx) {
      // (a) Impersonation.
      const a = await ctx.open(ctx.leaderUrl);
      const sa = sessionOf(await a.call('register', {}, 30_000));
      const own1 = await a.call('put', { path: '/s/a1', value: b64('a1'), client: stamp(sa, 1, 0) }, 30_000);
      const b = await ctx.open(ctx.followerUrl);
      const hijack = await b.call('put', { path: '/s/hijack-nosecret', value: b64('h'), client: { id: sa.id, seq: 2, ackedThrough: 1 } }, 30_000);
      const forgedAnswer = sa.secret === undefined ? null : await b.call('put', { path: '/s/hijack-forged', value: b64('h'), client: stamp(sa, 3, 1, forged(sa.secret)) }, 30_000);
      const own2 = await a.call('put', { path: '/s/a2', value: b64('a2'), client: stamp(sa, 2, 1) }, 30_000);
      const exists = async (path: string): Promise<string> => {
        const g = await a.call('get', { path }, 30_000);
        const code = codeOf(g);
        return code === null ? 'applied' : code === 'NO_NODE' ? 'not applied' : `unknown (${code})`;
      };
      const hijackApplied = await exists('/s/hijack-nosecret');
      const forgedApplied = forgedAnswer === null ? null : await exists('/s/hijack-forged');
      const own2Applied = await exists('/s/a2');

      // (b) Eviction by a flood of registers.
      const l = await ctx.open(ctx.leaderUrl);
      const sl = sessionOf(await l.call('register', {}, 30_000));
      const l1 = await l.call('put', { path: '/s/l1', value: b64('l1'), client: stamp(sl, 1, 0) }, 30_000);
      const flooders = await Promise.all(Array.from({ length: 4 }, () => ctx.open(ctx.leaderUrl)));
      const t0 = clock();
      const results = await Promise.all(flooders.map((f, k) => pipeline(f, Math.floor(registers / 4) + (k < registers % 4 ? 1 : 0), 1_000, () => ['register', {}], { timeoutMs: 120_000, deadlineMs: 400_000 })));
      const floodMs = clock() - t0;
      const refused: Record<string, number> = {};
      for (const r of results) for (const [k, v] of Object.entries(r.codes)) refused[k] = (refused[k] ?? 0) + v;
      const accepted = results.reduce((s, r) => s + r.ok, 0);
      const l2 = await l.call('put', { path: '/s/l2', value: b64('l2'), client: stamp(sl, 2, 1) }, 30_000);
      const l2Code = codeOf(l2);
      return {
        details: {
          a: {
            session: { id: sa.id, secret: sa.secret !== undefined },
            own1: brief(own1, 160),
            hijackNoSecret: brief(hijack, 200),
            hijackApplied,
            hijackForged: forgedAnswer === null ? null : brief(forgedAnswer, 200),
            forgedApplied,
            ownSeq2: brief(own2, 200),
            ownSeq2Applied: own2Applied,
          },
          b: { session: sl.id, l1: brief(l1, 160), registers, accepted, refused, floodMs: round1(floodMs), next: brief(l2, 200), nextCode: l2Code },
        },
        rows: [
          ['(a) A', `session ${sa.id}${sa.secret === undefined ? ' (no secret)' : ' (with a secret)'}; own seq 1: ${codeOf(own1) ?? 'ok'}`],
          ['(a) B stamps A/seq 2, no secret', `${brief(hijack, 120)} — ${hijackApplied}`],
          ...(forgedAnswer === null ? [] : [['(a) B stamps A/seq 3, forged secret', `${brief(forgedAnswer, 120)} — ${String(forgedApplied)}`] as Row]),
          ['(a) A then sends its own seq 2', `${brief(own2, 120)} — /s/a2 ${own2Applied}`],
          ['(b) flood', `${registers.toLocaleString('en')} registers (4 connections × 1,000 in flight) in ${ms(floodMs)}: ${accepted.toLocaleString('en')} accepted, refused ${JSON.stringify(refused)}`],
          ['(b) L idle during the flood', `${ms(floodMs)} (session TTL 60 s of log time)`],
          ['(b) L next stamped write', `${brief(l2, 160)}${l2Code === 'SESSION_EXPIRED' ? ' — the live session was evicted' : ''}`],
        ],
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The runner

interface CaseReport {
  readonly case: string;
  readonly params: Record<string, unknown>;
  readonly server: string;
  readonly error?: string;
  readonly attack?: Record<string, unknown>;
  readonly figures?: CommonFigures;
}

const BASELINE_MS = 1_500;
const SETTLE_MS = 2_000;

let current: { cluster: Cluster; stopping: boolean } | null = null;

async function runCase(spec: CaseSpec, server: string, clkTck: number): Promise<{ report: CaseReport; rows: Row[] }> {
  const cluster = await Cluster.start(3, { main: server });
  const run = { cluster, stopping: false };
  current = run;
  const crashes: { member: string; code: number | null; signal: string | null; at: number; lastLogs: string[] }[] = [];
  for (const m of cluster.members) {
    m.process?.once('exit', (code, signal) => {
      if (run.stopping) return;
      const tail = m.logs.slice(-80);
      const errorLines = tail.filter((l) => /Error|error|fatal|FATAL/.test(l) && !/^\s+at /.test(l));
      crashes.push({ member: m.name, code, signal, at: clock(), lastLogs: (errorLines.length > 0 ? errorLines.slice(-3) : tail.slice(-3)).map((l) => l.slice(0, 400)) });
    });
  }
  const conns: Conn[] = [];
  let monitor: Monitor | null = null;
  const lag = monitorEventLoopDelay({ resolution: 10 });
  try {
    const leaderOf = async (): Promise<{ leader: string; leaderUrl: string; followerUrl: string }> => {
      const leader = await cluster.leader(30_000);
      const follower = cluster.members.find((m) => m.name !== leader && m.process !== null)!;
      return { leader, leaderUrl: cluster.member(leader).clientUrl, followerUrl: follower.clientUrl };
    };
    const ctx: Ctx = {
      cluster,
      ...(await leaderOf()),
      open: async (url, options) => {
        const conn = await Conn.open(url, options);
        conns.push(conn);
        return conn;
      },
      state: {},
    };
    if (spec.setup !== undefined) await spec.setup(ctx);
    Object.assign(ctx, await leaderOf());
    const members: MonitorMember[] = cluster.members.map((m) => ({ name: m.name, clientUrl: m.clientUrl, httpUrl: m.httpUrl, pid: m.process!.pid! }));
    monitor = await Monitor.start({ members, canaryUrl: ctx.followerUrl, clkTck });
    await sleep(BASELINE_MS);
    const cpuNow = (): (number | null)[] => members.map((m) => readCpuSeconds(m.pid, clkTck));
    lag.enable();
    const attackStart = clock();
    const cpuStart = cpuNow();
    let outcome: AttackOutcome;
    let limitTimer: NodeJS.Timeout | undefined;
    try {
      outcome = await Promise.race([
        spec.attack(ctx),
        new Promise<never>((_, reject) => (limitTimer = setTimeout(() => reject(new Error(`the attack did not finish within ${spec.limitMs} ms`)), spec.limitMs))),
      ]);
    } finally {
      clearTimeout(limitTimer);
    }
    const attackEnd = clock();
    const cpuEnd = cpuNow();
    await sleep(SETTLE_MS);
    lag.disable();
    await cluster.leader(30_000).catch(() => null); // a cluster still electing is seen by the monitor meanwhile
    const result = await monitor.stop();
    monitor = null;
    const f = figures(result, { attackStart, attackEnd }, members, ctx.leader, ctx.followerUrl, { start: cpuStart, end: cpuEnd }, crashes, lag.max / 1e6);
    const rows: Row[] = [...outcome.rows, ...commonRows(f)];
    return { report: { case: spec.name, params: spec.params, server, attack: outcome.details, figures: f }, rows };
  } catch (error) {
    const message = (error as Error).stack ?? String(error);
    const logs = cluster.members.map((m) => `${m.name}: ${m.logs.slice(-3).join(' | ').slice(0, 600)}`).join('\n');
    return {
      report: { case: spec.name, params: spec.params, server, error: (error as Error).message, ...(crashes.length > 0 ? { attack: { crashes } } : {}) },
      rows: [
        ['FAILED', message.split('\n').slice(0, 3).join(' / ')],
        ['crashes', crashes.length === 0 ? 'none' : crashes.map((c) => `${c.member} exit ${String(c.code)} ${String(c.signal)}`).join(', ')],
        ['last logs', logs],
      ],
    };
  } finally {
    lag.disable();
    for (const c of conns) c.terminate();
    if (monitor !== null) await monitor.terminate();
    run.stopping = true;
    await cluster.stop();
    current = null;
  }
}

function commonRows(f: CommonFigures): Row[] {
  const probe = Object.entries(f.probe.perMember)
    .map(([name, p]) => `${name}${name === f.memory.leader ? '(L)' : ''} ${ms(p.p50)}/${ms(p.p99)}/${ms(p.max)}${p.outstandingAtStop ? ' (one unanswered ≥ 100 ms at stop)' : ''}${p.errors > 0 ? ` ${p.errors} errors` : ''}`)
    .join('  ');
  const mem = f.memory;
  const mib = (x: number | null): string => (x === null ? '— (exited)' : String(x));
  const memLine = `leader ${mem.leader} ${mib(mem.leaderBaselineMiB)} → ${mib(mem.leaderPeakMiB)}; worst ${String(mem.worst)} ${mib(mem.worstBaselineMiB)} → ${mib(mem.worstPeakMiB)}`;
  const c = f.canary;
  return [
    ['probe p50/p99/max', `${probe}; worst ${String(f.probe.worst)} ${ms(f.probe.worstMaxMs)}`],
    [`canary (on ${c.member})`, `${c.puts} puts max ${ms(c.putMaxMs)} p99 ${ms(c.putP99Ms)}; ${c.gets} gets max ${ms(c.getMaxMs)} p99 ${ms(c.getP99Ms)}; failed ${JSON.stringify(c.failures)}`],
    ['RSS MiB baseline → peak', memLine],
    ['leader changes', `${f.leaderChanges} (${f.leaderTerms.join(', ')})`],
    ['member crashes', f.crashes.length === 0 ? 'none' : f.crashes.map((x) => `${x.member} exit ${String(x.code)} signal ${String(x.signal)} at ${x.atS} s; its last output: ${x.lastLogs.join(' | ').slice(0, 300)}`).join(', ')],
    ['leader CPU over the attack', `${f.leaderCpuS === null ? '—' : `${f.leaderCpuS} s`} (members ${Object.entries(f.memberCpuS).map(([n, s]) => `${n} ${String(s)}`).join(', ')})`],
    ['attack wall / window', `${ms(f.attackWallMs)} / ${ms(f.windowMs)} (bench main-thread lag max ${ms(f.benchLagMaxMs)})`],
  ];
}

function printTable(title: string, rows: readonly Row[]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n== ${title}\n`);
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      cases: { type: 'string', default: 'deep-id,recursive-delete,deep-path-watch,watch-replay,big-answer,unread,answer-bound,sessions' },
      children: { type: 'string', default: '5000,10000,20000,100000' },
      puts: { type: 'string', default: '50000' },
      'value-bytes': { type: 'string', default: '100' },
      registers: { type: 'string', default: '100000' },
      'unread-max': { type: 'string', default: '1200' },
      json: { type: 'boolean', default: false },
    },
  });
  const server = values.server === undefined ? new URL('../server/main.ts', import.meta.url).pathname : resolvePath(values.server);
  let clkTck = 100;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    // 100 on Linux
  }
  let revision = 'unknown';
  try {
    const dir = dirname(server);
    const head = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']).toString().trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--', '.']).toString().trim().length > 0;
    revision = `${head}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    // not a git tree
  }
  const specs: CaseSpec[] = [];
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
  for (const name of values.cases.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const make = all[name];
    if (make === undefined) throw new Error(`unknown case ${name}; cases: ${Object.keys(all).join(', ')}`);
    specs.push(...make());
  }
  process.stdout.write(`adversarial bench: server ${server} at ${revision}; ${specs.length} cases; node ${process.version}\n`);
  const stopOnSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping the cluster\n`);
    const run = current;
    if (run === null) process.exit(130);
    run.stopping = true;
    void run.cluster.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  for (const spec of specs) {
    const started = clock();
    const { report, rows } = await runCase(spec, server, clkTck);
    printTable(`${spec.label}  [${ms(clock() - started)} with setup]`, rows);
    if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  }
}

if (isMainThread) {
  await main();
  process.exit(0);
} else if ((workerData as { monitor?: MonitorInput } | null)?.monitor !== undefined) {
  monitorWorker((workerData as { monitor: MonitorInput }).monitor);
}
