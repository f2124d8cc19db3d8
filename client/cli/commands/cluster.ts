/**
 * `warden member list`, `warden endpoint status`, `warden endpoint health`: the cluster as its
 * members see it. The endpoint commands ask every endpoint on its own — a client per endpoint,
 * holding that endpoint alone — so one row is one member, and an unreachable member is a row
 * with its error (exit 1) rather than a hidden retry elsewhere.
 *
 * Must never: let one slow member hold the table past --timeout (default 5 s per endpoint here).
 */

import type { CommandModule } from 'yargs';
import { WardenError, type MemberStatus } from '../../api.js';
import { bytes } from '../output.js';
import { action, type Context } from './context.js';

type Args = Record<string, unknown>;

const ENDPOINT_TIMEOUT_MS = 5_000;

interface Probe {
  readonly endpoint: string;
  readonly status: MemberStatus | null;
  readonly rttMs: number | null;
  readonly error: string | null;
}

/** Each endpoint on its own client: its status, and the round trip of a second status request. */
async function probeAll(ctx: Context, health: boolean): Promise<Probe[]> {
  const timeoutMs = ctx.timeoutMs ?? ENDPOINT_TIMEOUT_MS;
  return Promise.all(
    ctx.endpoints.map(async (endpoint): Promise<Probe> => {
      const client = ctx.open([endpoint]);
      try {
        const status = await client.status({ timeoutMs }); // opens the socket
        const started = performance.now();
        if (health) await client.get('/', { timeoutMs }); // a linearizable read: this member can serve with a quorum
        else await client.status({ timeoutMs });
        const rttMs = Math.round((performance.now() - started) * 100) / 100;
        return { endpoint, status, rttMs, error: null };
      } catch (error) {
        return { endpoint, status: null, rttMs: null, error: error instanceof WardenError ? `${error.code}: ${error.message}` : String(error) };
      } finally {
        await client.close();
      }
    }),
  );
}

const num = (s: MemberStatus | null, key: string): unknown => (s === null ? null : s[key]);

const status: CommandModule<object, Args> = {
  command: 'status',
  describe: 'each endpoint\'s name, leader, term, commit, applied, revision, sizes, latency, loop lag',
  builder: (y) => y.example('$0 endpoint status', 'a table across every endpoint').example('$0 endpoint status -o json', 'the members\' full /status, one JSON array'),
  handler: action(async (ctx) => {
    const probes = await probeAll(ctx, false);
    const columns = ['ENDPOINT', 'NAME', 'ID', 'LEADER', 'TERM', 'COMMIT', 'APPLIED', 'REVISION', 'DB SIZE', 'WAL SIZE', 'RTT (ms)', 'LOOP LAG p99 (ms)', 'ERROR'];
    const rows = probes.map((p) => {
      const s = p.status;
      const lag = num(s, 'loopLagMs') as { p99?: number } | null;
      return [p.endpoint, num(s, 'name'), num(s, 'id'), num(s, 'leader'), num(s, 'term'), num(s, 'commit'), num(s, 'applied'), num(s, 'revision'), s === null ? null : bytes(s['dbSize']), s === null ? null : bytes(s['walSize']), p.rttMs === null ? null : p.rttMs.toFixed(1), typeof lag?.p99 === 'number' ? lag.p99.toFixed(1) : null, p.error];
    });
    ctx.out.print({
      json: probes.map((p) => ({ endpoint: p.endpoint, rttMs: p.rttMs, error: p.error, status: p.status })),
      simple: rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))).join(', ')),
      table: { columns, rows },
    });
    return probes.some((p) => p.error !== null) ? 1 : 0;
  }),
};

const health: CommandModule<object, Args> = {
  command: 'health',
  describe: 'whether each endpoint serves a linearizable read (exit 1 if any does not)',
  builder: (y) => y.example('$0 endpoint health', 'healthy or not, per endpoint, with the time taken'),
  handler: action(async (ctx) => {
    const probes = await probeAll(ctx, true);
    const healthy = (p: Probe): boolean => p.error === null && p.status !== null && p.status.leader !== null;
    ctx.out.print({
      json: probes.map((p) => ({ endpoint: p.endpoint, healthy: healthy(p), tookMs: p.rttMs, error: p.error ?? (healthy(p) ? null : 'no leader') })),
      simple: probes.map((p) => (healthy(p) ? `${p.endpoint} is healthy: took ${p.rttMs} ms` : `${p.endpoint} is unhealthy: ${p.error ?? 'no leader'}`)),
      table: { columns: ['ENDPOINT', 'HEALTH', 'TOOK (ms)', 'ERROR'], rows: probes.map((p) => [p.endpoint, healthy(p), p.rttMs, p.error ?? (healthy(p) ? null : 'no leader')]) },
    });
    return probes.every(healthy) ? 0 : 1;
  }),
};

export const endpointCommand: CommandModule<object, Args> = {
  command: 'endpoint <command>',
  describe: 'status and health of each endpoint',
  builder: (y) => y.command([status, health]).demandCommand(1, 'say which: status or health').example('$0 endpoint status', 'a table across every endpoint'),
  handler: () => undefined,
};

const memberList: CommandModule<object, Args> = {
  command: 'list',
  describe: 'the cluster\'s members: name, peer URL, client URL, and which leads',
  builder: (y) => y.example('$0 member list', 'every member'),
  handler: action(async (ctx) => {
    const s = await ctx.client.status();
    const members = (s['members'] as { name: string; peerUrl: string; clientUrl: string | null }[] | undefined) ?? [];
    const rows = members.map((m) => [m.name, m.peerUrl, m.clientUrl, m.name === s.leader]);
    ctx.out.print({
      json: members.map((m) => ({ ...m, isLeader: m.name === s.leader })),
      simple: rows.map((r) => r.map((c) => (c === null ? '-' : String(c))).join(', ')),
      table: { columns: ['NAME', 'PEER URL', 'CLIENT URL', 'LEADER'], rows },
    });
  }),
};

export const memberCommand: CommandModule<object, Args> = {
  command: 'member <command>',
  describe: 'the cluster\'s members',
  builder: (y) => y.command([memberList]).demandCommand(1, 'say which: list').example('$0 member list', 'every member'),
  handler: () => undefined,
};
