/**
 * Members that must fail fast, and answers that must not lie across a failover (issue 11, cases
 * 12 and 13), on a cluster of their own:
 * - a wardend whose client port is taken exits 1 within a second or so of failing, saying which port and flag, and
 *   releases its peer port; a wardend started on a live member's --data-dir exits 1 naming the
 *   directory, and the live member goes on (both under the arena's invariants, arena.ts);
 * - while a client pipelines unstamped puts of unique paths through a follower, the leader is
 *   SIGKILLed: once a new leader is elected, every put answered ok exists, and none answered with
 *   an outcome of 'retry' or 'final' does (OUTCOME_UNKNOWN and TIMEOUT may be either). This last
 *   case moves the leadership on purpose, so it runs last and outside the arena's invariants.
 *
 * Must never: sleep as synchronisation (waits are on exits, answers and elections, with bounds);
 * leave a process, a port, a connection or a folder behind; use a server module.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_OUTCOMES, isErrorCode } from '../../shared/errors.js';
import { freePort } from '../integration/cluster.js';
import { arena, SERVER_MAIN } from './arena.js';
import { b64, clock, codeOf, Conn, errorOf, until, type Answer } from './conn.js';

const MAIN = SERVER_MAIN ?? fileURLToPath(new URL('../../server/main.ts', import.meta.url));
/** "Within about a second of being ready to fail". */
const EXIT_AFTER_FATAL_MAX_MS = 1_500;
const a = arena();
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * One wardend outside the cluster: its output, its exit code, and how long it stayed up after its
 * first fatal log line (`lingerMs`; from spawn when there was none), bounded by `timeoutMs`.
 */
async function wardend(args: string[], timeoutMs: number): Promise<{ code: number | null; lingerMs: number; output: string }> {
  const started = clock();
  // Niced: starting tsx compiles the server on both cores, which is this test's load, not a client's.
  const child: ChildProcess = spawn('nice', ['-n', '19', process.execPath, '--import', 'tsx', MAIN, '--log-format', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let fatalAt: number | null = null;
  const take = (chunk: Buffer): void => {
    output += chunk.toString();
    if (fatalAt === null && /"level":60|fatal/i.test(output)) fatalAt = clock();
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(-1);
    }, timeoutMs);
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  return { code, lingerMs: clock() - (fatalAt ?? started), output };
}
const listen = (port: number): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe('a member that cannot start fails fast', () => {
  it('exits 1 when its client port is taken, naming the port and the flag, and frees its peer port', async () => {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const taken = await listen(clientPort);
    const dir = mkdtempSync(join(tmpdir(), 'warden-adv-'));
    dirs.push(dir);
    try {
      await a.underAttack('client port taken', async () => {
        const run = await wardend(['--name', 'x', '--data-dir', join(dir, 'x'), '--listen-client', `ws://127.0.0.1:${clientPort}`, '--listen-peer', `ws://127.0.0.1:${peerPort}`, '--initial-cluster', `x=ws://127.0.0.1:${peerPort}`], 20_000);
        expect(run.code, run.output.slice(-600)).toBe(1);
        expect(run.lingerMs, 'from its fatal log line to its exit').toBeLessThan(EXIT_AFTER_FATAL_MAX_MS);
        const fatal = run.output.split('\n').find((line) => line.includes(String(clientPort)) && line.includes('--listen-client'));
        expect(fatal, run.output.slice(-600)).toBeDefined();
        await close(await listen(peerPort)); // bound at once: wardend let go of it
      });
    } finally {
      await close(taken);
    }
  });

  it("exits 1 when started on a live member's --data-dir, naming the directory; the member goes on", async () => {
    const dataDir = join(a.cluster.dataRoot, a.quiet);
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    await a.underAttack('data dir in use', async () => {
      const before = await a.statusOf(a.quiet, 'applied');
      const run = await wardend(['--name', a.quiet, '--data-dir', dataDir, '--listen-client', `ws://127.0.0.1:${clientPort}`, '--listen-peer', `ws://127.0.0.1:${peerPort}`, '--initial-cluster', `${a.quiet}=ws://127.0.0.1:${peerPort}`], 20_000);
      expect(run.code, run.output.slice(-600)).toBe(1);
      expect(run.lingerMs, 'from its fatal log line to its exit').toBeLessThan(EXIT_AFTER_FATAL_MAX_MS);
      expect(run.output.split('\n').some((line) => line.includes(dataDir) && /fatal|"level":60/.test(line)), run.output.slice(-600)).toBe(true);
      await close(await listen(peerPort));
      // The live member still applies: its applied index moves on with the canary's writes.
      expect(await until(async () => (await a.statusOf(a.quiet, 'applied')) > before + 5, 5_000)).toBe(true);
      const conn = await a.open(a.quietUrl);
      expect(await conn.call('put', { path: '/after-second-wardend', value: b64('x') })).toMatchObject({ ok: true });
    });
  });
});

describe('no "retry" lie across a leader failover', () => {
  it("after the leader is SIGKILLed mid-pipeline, every put answered ok exists and none answered 'retry' or 'final' does", async () => {
    const conn = await Conn.open(a.quietUrl);
    try {
      const answers = new Map<number, Answer>();
      let sent = 0;
      let acked = 0;
      let stop = false;
      const worker = async (): Promise<void> => {
        while (!stop && sent < 6_000) {
          const i = sent++;
          const answer = await conn.call('put', { path: `/f/k${String(i).padStart(5, '0')}`, value: b64(`v${i}`) }, 30_000);
          answers.set(i, answer);
          if (answer['ok'] === true) acked += 1;
          else await new Promise((resolve) => setTimeout(resolve, 20)); // pacing while there is no leader, not synchronisation
        }
      };
      const workers = Array.from({ length: 64 }, worker);
      expect(await until(() => acked >= 300, 20_000)).toBe(true);
      await a.cluster.kill(a.leader, 'SIGKILL');
      const newLeader = await a.cluster.leader(30_000);
      expect(newLeader).not.toBe(a.leader);
      const ackedAtElection = acked;
      await until(() => acked >= ackedAtElection + 300 || sent >= 6_000, 20_000);
      stop = true;
      await Promise.all(workers);
      const reader = await Conn.open(a.cluster.member(newLeader).clientUrl);
      const exists = new Set<string>();
      for (let after: string | null = null, pages = 0; pages < 100; pages++) {
        const page: Answer = await reader.call('range', { path: '/f', limit: 1_000, ...(after === null ? {} : { after }) }, 30_000);
        expect(page).toMatchObject({ ok: true });
        for (const node of page['nodes'] as { path: string }[]) exists.add(node.path);
        after = (page['next'] as string | null) ?? null;
        if (after === null) break;
      }
      reader.terminate();
      const lies: string[] = [];
      const withoutOutcome: string[] = [];
      const tally: Record<string, number> = {};
      for (const [i, answer] of answers) {
        const path = `/f/k${String(i).padStart(5, '0')}`;
        const code = codeOf(answer);
        const error = errorOf(answer);
        const outcome = code === null ? 'ok' : (error.outcome ?? (isErrorCode(code) ? `${ERROR_OUTCOMES[code]} (no outcome field)` : 'none'));
        const key = `${code ?? 'ok'}/${outcome}`;
        tally[key] = (tally[key] ?? 0) + 1;
        if (code === null && !exists.has(path)) lies.push(`${path}: answered ok, not there`);
        if (code !== null && /^(retry|final)/.test(outcome) && exists.has(path)) lies.push(`${path}: answered ${code} (${outcome}), yet applied`);
        if (code !== null && !['CLIENT_TIMEOUT', 'CONNECTION_CLOSED'].includes(code) && !/^(retry|unknown|final)$/.test(String(error.outcome))) withoutOutcome.push(`${path}: ${code}`);
      }
      process.stdout.write(`[adversarial] failover: ${answers.size} puts, ${exists.size} applied; answers ${JSON.stringify(tally)}\n`);
      expect(lies).toEqual([]);
      expect(withoutOutcome, 'every error says what the client may do').toEqual([]);
      expect(Object.keys(tally).some((k) => !k.startsWith('ok/')), 'the kill hit writes in flight').toBe(true);
    } finally {
      conn.terminate();
    }
  });
});
