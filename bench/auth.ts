/**
 * `npm run bench:auth`: what permission checks cost, for a user holding 1,000 roles with 10
 * prefixes each (10,000 prefixes).
 * 1. The check itself (server/state/auth.ts, in this process): ns per `may()` on paths of depth
 *    2 and 6, granted and refused, and the time to compile the user's grants (paid once per auth
 *    revision, on the first check after a change).
 * 2. Per request, on a real 3-member cluster (fsync on): linearizable gets and puts at 64 in
 *    flight over one connection to the leader, with auth off and with auth on as that user,
 *    turns alternated (off, on, off, on…) in one run; the ratio on÷off is the cost.
 * 3. What 1,000 wrong passwords (20 connections) cost another user's gets, beside the same
 *    number of requests that hash nothing (authStatus), turns alternated.
 * Flags: --seconds N per turn (default 4), --rounds N (default 3).
 *
 * Must never: run in CI; be read as a test; leave members behind.
 */

import { parseArgs } from 'node:util';
import { AuthTable } from '../server/state/auth.js';
import { Cluster, ProtocolClient } from '../test/integration/cluster.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const ROLES = 1_000;
const PER_ROLE = 10;

function micro(): void {
  const table = new AuthTable();
  table.apply({ op: 'userAdd', name: 'many', password: null });
  for (let r = 0; r < ROLES; r++) {
    table.apply({ op: 'roleAdd', name: `role${r}` });
    for (let p = 0; p < PER_ROLE; p++) table.apply({ op: 'roleGrant', name: `role${r}`, path: `/tenant${r}/app${p}`, access: 'write' });
    table.apply({ op: 'userGrantRole', name: 'many', role: `role${r}` });
  }
  const compileStart = performance.now();
  table.may('many', '/tenant0/app0', 'read');
  const compileMs = performance.now() - compileStart;
  const cases: [string, string, boolean][] = [
    ['depth 2, granted', '/tenant500/app5', true],
    ['depth 6, granted', '/tenant500/app5/a/b/c/d', true],
    ['depth 2, refused', '/tenant500/app99', false],
    ['depth 6, refused', '/other/x/a/b/c/d', false],
  ];
  console.log(`permission check, ${ROLES} roles × ${PER_ROLE} prefixes = ${ROLES * PER_ROLE} prefixes; compiling the user's grants: ${compileMs.toFixed(1)} ms (once per auth change)`);
  for (const [label, path, expected] of cases) {
    const n = 1_000_000;
    let hits = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) if (table.may('many', path, 'write')) hits += 1;
    const ns = Number(process.hrtime.bigint() - start) / n;
    if ((hits === n) !== expected) throw new Error(`${label}: expected ${expected}`);
    console.log(`  ${label.padEnd(18)} ${ns.toFixed(0).padStart(5)} ns per check`);
  }
}

/** Requests of `type` at 64 in flight for `seconds`: answered per second (all must be ok). */
async function load(conn: ProtocolClient, type: 'get' | 'put', tag: string): Promise<number> {
  const end = performance.now() + seconds * 1_000;
  let done = 0;
  let i = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const k = i++ % 1_000;
      const answer = type === 'get' ? await conn.request('get', { path: `/t0/app0/k${k}` }) : await conn.request('put', { path: `/t0/app0/k${k}`, value: Buffer.from(`${tag}${k}`.padEnd(256, '.')).toString('base64') });
      if (answer['ok'] !== true) throw new Error(`${type}: ${JSON.stringify(answer)}`);
      done += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: 64 }, worker));
  return done / ((performance.now() - started) / 1_000);
}

async function perRequest(): Promise<void> {
  const cluster = await Cluster.start(3, { tickMs: 100 });
  try {
    const leader = await cluster.leader();
    const url = cluster.member(leader).clientUrl;
    const setup = await ProtocolClient.connect(url);
    const must = async (type: string, fields: Record<string, unknown>): Promise<void> => {
      const answer = await setup.request(type, fields, 60_000);
      if (answer['ok'] !== true) throw new Error(`${type}: ${JSON.stringify(answer)}`);
    };
    await must('userAdd', { name: 'root', password: 'root-pw' });
    await must('userAdd', { name: 'many', password: 'many-pw' });
    for (let r = 0; r < ROLES; r++) {
      await must('roleAdd', { name: `role${r}` });
      await Promise.all(Array.from({ length: PER_ROLE }, (_, p) => must('roleGrant', { name: `role${r}`, path: `/t${r}/app${p}`, access: 'write' })));
      await must('userGrantRole', { name: 'many', role: `role${r}` });
    }
    const off = await ProtocolClient.connect(url);
    for (let k = 0; k < 1_000; k += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => off.request('put', { path: `/t0/app0/k${k + j}`, value: Buffer.from('x').toString('base64') })));
    const figures: Record<string, { off: number[]; on: number[] }> = { get: { off: [], on: [] }, put: { off: [], on: [] } };
    for (let round = 0; round < rounds; round++) {
      for (const type of ['get', 'put'] as const) {
        figures[type]!.off.push(await load(off, type, 'off'));
        await must('authEnable', {});
        const on = await ProtocolClient.connect(url);
        const login = await on.request('authenticate', { user: 'many', password: 'many-pw' });
        if (login['ok'] !== true) throw new Error(`login: ${JSON.stringify(login)}`);
        figures[type]!.on.push(await load(on, type, 'on'));
        on.close();
        const admin = await ProtocolClient.connect(url);
        await admin.request('authenticate', { user: 'root', password: 'root-pw' });
        const disabled = await admin.request('authDisable', {});
        if (disabled['ok'] !== true) throw new Error(`authDisable: ${JSON.stringify(disabled)}`);
        admin.close();
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`\nper request, 3 members, one connection to the leader, 64 in flight, ${rounds} rounds of ${seconds} s turns (median):`);
    for (const type of ['get', 'put'] as const) {
      const { off: o, on: n } = figures[type]!;
      const ratios = o.map((x, i) => n[i]! / x);
      console.log(`  ${type}: auth off ${median(o).toFixed(0)}/s, auth on (1,000 roles, 10,000 prefixes) ${median(n).toFixed(0)}/s, on÷off ${median(ratios).toFixed(2)} (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})`);
    }
    setup.close();
    off.close();
    await floodCost(url);
  } finally {
    await cluster.stop();
  }
}

/**
 * Another user's gets, one at a time for `seconds`, in three turns per round: quiet; while 20
 * connections (from the same address, as an attacker behind the same NAT) send 1,000 wrong
 * passwords spread over the turn; and, as the control, while they send as many `authStatus`
 * requests at the same pace (a request flood that hashes nothing). p50 and p99 of the user's gets.
 */
async function floodCost(url: string): Promise<void> {
  const root = await ProtocolClient.connect(url);
  await root.request('authEnable', {});
  await root.request('authenticate', { user: 'root', password: 'root-pw' });
  const reader = await ProtocolClient.connect(url);
  await reader.request('authenticate', { user: 'root', password: 'root-pw' });
  const gets = async (): Promise<number[]> => {
    const latencies: number[] = [];
    const end = performance.now() + seconds * 1_000;
    while (performance.now() < end) {
      const t = performance.now();
      const answer = await reader.request('get', { path: '/t0/app0/k1' });
      if (answer['ok'] !== true) throw new Error(`get: ${JSON.stringify(answer)}`);
      latencies.push(performance.now() - t);
    }
    return latencies.sort((x, y) => x - y);
  };
  const pct = (xs: number[], p: number): string => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!.toFixed(2);
  /** 1,000 requests from 20 connections, spread evenly over the turn, while the reader reads. */
  const during = async (request: (c: number, i: number) => [string, Record<string, unknown>]): Promise<{ latencies: number[]; codes: Record<string, number> }> => {
    const attackers = await Promise.all(Array.from({ length: 20 }, () => ProtocolClient.connect(url)));
    const codes: Record<string, number> = {};
    const gapMs = (seconds * 1_000) / 50;
    const flood = Promise.all(
      attackers.map(async (conn, c) => {
        for (let i = 0; i < 50; i++) {
          const next = performance.now() + gapMs;
          const [type, fields] = request(c, i);
          const answer = await conn.request(type, fields);
          const code = (answer['error'] as { code?: string } | undefined)?.code ?? 'ok';
          codes[code] = (codes[code] ?? 0) + 1;
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now()))); // pacing, not synchronisation
        }
      }),
    );
    const latencies = await gets();
    await flood;
    for (const conn of attackers) conn.close();
    return { latencies, codes };
  };
  const rows: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const quiet = await gets();
    const wrong = await during((c, i) => ['authenticate', { user: 'many', password: `guess-${round}-${c}-${i}` }]);
    const control = await during(() => ['authStatus', {}]);
    const codes = Object.entries(wrong.codes).map(([k, v]) => `${k} ${v}`).join(', ');
    rows.push(`  round ${round + 1}: quiet p50 ${pct(quiet, 50)} p99 ${pct(quiet, 99)} ms; 1,000 wrong passwords p50 ${pct(wrong.latencies, 50)} p99 ${pct(wrong.latencies, 99)} ms (${codes}); 1,000 authStatus p50 ${pct(control.latencies, 50)} p99 ${pct(control.latencies, 99)} ms`);
  }
  console.log(`\nanother user's linearizable gets (1 in flight): quiet, during 1,000 wrong passwords from 20 connections over ${seconds} s, and during as many authStatus requests:`);
  for (const row of rows) console.log(row);
  reader.close();
  root.close();
}

micro();
await perRequest();
