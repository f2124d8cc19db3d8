/**
 * `warden member list|add|promote|remove`, `warden endpoint status`, `warden endpoint health`,
 * `warden alarm list`:
 * the cluster as its members see it, and changes to its membership. The member commands go to
 * the leader through the client's `members` calls (client/members.ts). The endpoint commands
 * ask every endpoint on its own — a client per endpoint, holding that endpoint alone — so one
 * row is one member, and an unreachable member is a row with its error (exit 1) rather than a
 * hidden retry elsewhere.
 *
 * Must never: let one slow member hold the table past --timeout (default 5 s per endpoint here);
 * retry a membership change whose outcome is unknown (the client does not; the error printed
 * says to check `member list` first).
 */

import type { Argv, CommandModule } from 'yargs';
import { PROMOTE_DEADLINE_MS, WardenError, type AlarmInfo, type MemberChange, type MemberInfo, type MemberStatus } from '../../api.js';
import { bytes, UsageError, type Result } from '../output.js';
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

// member

/** `member list` in every shape: json is the array of members as the client answers them. */
export function memberListResult(members: readonly MemberInfo[]): Result {
  const rows = members.map((m) => [m.name, m.role, m.peerUrl, m.clientUrl, m.isLeader, m.lag]);
  return {
    json: members,
    simple: rows.map((r) => r.map((c) => (c === null ? '-' : String(c))).join(', ')),
    table: { columns: ['NAME', 'ROLE', 'PEER URL', 'CLIENT URL', 'LEADER', 'LAG'], rows },
  };
}

/** A membership change done: a line for people and scripts; the member and the revision for json. */
export function memberChangeResult(line: string, result: MemberChange): Result {
  return { json: { ...result.member, revision: result.revision }, simple: [line] };
}

/** A member's name as given (yargs may have made `7` a number): not empty. */
export function memberName(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  if (text === '') throw new UsageError('NAME: give the member\'s name');
  return text;
}

/** A peer URL: ws:// or wss://, as the members' --listen-peer. */
export function peerUrlOf(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  if (!/^wss?:\/\/\S+$/.test(text)) throw new UsageError(`PEER_URL: a ws:// or wss:// URL where the new member listens for its peers, got ${JSON.stringify(text)}`);
  return text;
}

/**
 * A change that failed once it may have reached the leader: say how to find out what happened,
 * then fail as usual (exit 1, the error printed).
 */
async function changing<T>(ctx: Context, after: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof WardenError && error.outcomeUnknown) ctx.out.note(`The change may have been applied: see \`warden member list\`${after} before trying it again.`);
    throw error;
  }
}

const withMemberName = (y: Argv): Argv => y.positional('name', { type: 'string', describe: 'the member\'s name (its --name)' });

const memberList: CommandModule<object, Args> = {
  command: 'list',
  describe: 'the cluster\'s members: name, role, peer URL, client URL, which leads, and how far behind each is',
  builder: (y) => y.example('$0 member list', 'every member, voters and learners').example('$0 member list -o json', 'a JSON array of members'),
  handler: action(async (ctx) => {
    ctx.out.print(memberListResult(await ctx.client.members.list()));
  }),
};

const memberAdd: CommandModule<object, Args> = {
  command: 'add <name> <peer-url>',
  describe: 'add a member: a learner first, promoted to voter once it has caught up (--learner: leave it a learner)',
  builder: (y) =>
    withMemberName(y)
      .positional('peer-url', { type: 'string', describe: 'where the new member listens for its peers (its --listen-peer)' })
      .option('learner', { type: 'boolean', default: false, describe: 'add it as a learner and answer at once (promote it later with `member promote`)' })
      .example('$0 member add n4 ws://10.0.0.4:7081', 'add n4, and wait until it has caught up and votes')
      .example('$0 member add n4 ws://10.0.0.4:7081 --learner', 'add n4 as a learner only'),
  handler: action(async (ctx, args) => {
    const name = memberName(args['name']);
    const peerUrl = peerUrlOf(args['peer-url']);
    const learner = args['learner'] === true;
    // Waiting for the promotion gets its own, longer deadline unless --timeout says otherwise.
    const timeoutMs = learner ? ctx.timeoutMs : (ctx.timeoutMs ?? PROMOTE_DEADLINE_MS);
    // On stderr: a script reading stdout gets the result alone.
    if (!learner) ctx.out.note(`Adding ${name} as a learner, then waiting for it to catch up with the leader before it is promoted to voter (up to ${Math.round((timeoutMs ?? PROMOTE_DEADLINE_MS) / 1000)} s; --learner does not wait).`);
    const after = learner ? '' : ` (it may be a learner still to promote: \`warden member promote ${name}\`)`;
    const result = await changing(ctx, after, () => ctx.client.members.add(name, peerUrl, { learner, ...(timeoutMs === undefined ? {} : { timeoutMs }) }));
    ctx.out.print(memberChangeResult(`member ${name} added as a ${result.member.role ?? (learner ? 'learner' : 'voter')} (${result.member.peerUrl ?? peerUrl})`, result));
  }),
};

const memberPromote: CommandModule<object, Args> = {
  command: 'promote <name>',
  describe: 'make a learner a voter (refused while it is too far behind the leader)',
  builder: (y) => withMemberName(y).example('$0 member promote n4', 'n4 votes from now on'),
  handler: action(async (ctx, args) => {
    const name = memberName(args['name']);
    const result = await changing(ctx, '', () => ctx.client.members.promote(name));
    ctx.out.print(memberChangeResult(`member ${name} promoted to voter`, result));
  }),
};

const memberRemove: CommandModule<object, Args> = {
  command: 'remove <name>',
  describe: 'remove a member (the leader too: it hands over first); its name is never used again',
  builder: (y) => withMemberName(y).example('$0 member remove n2', 'n2 leaves the cluster for good'),
  handler: action(async (ctx, args) => {
    const name = memberName(args['name']);
    const result = await changing(ctx, '', () => ctx.client.members.remove(name));
    ctx.out.print(memberChangeResult(`member ${name} removed`, result));
  }),
};

export const memberCommand: CommandModule<object, Args> = {
  command: 'member <command>',
  describe: 'the cluster\'s members: list, add, promote, remove',
  builder: (y) =>
    y
      .command([memberList, memberAdd, memberPromote, memberRemove])
      .demandCommand(1, 'say which: list, add, promote or remove')
      .example('$0 member list', 'every member')
      .example('$0 member add n4 ws://10.0.0.4:7081', 'add a member (it votes once caught up)'),
  handler: () => undefined,
};

// alarm

/** `alarm list` in every shape: json is the array of alarms; no alarm is an empty table (and no lines). */
export function alarmListResult(alarms: readonly AlarmInfo[]): Result {
  const rows = alarms.map((a) => [a.member, a.kind, new Date(a.raisedAtMs).toISOString(), bytes(a.usedBytes), bytes(a.quotaBytes)]);
  return {
    json: alarms,
    simple: alarms.map((a) => `${a.member}, ${a.kind}, ${a.usedBytes}, ${a.quotaBytes}`),
    table: { columns: ['MEMBER', 'ALARM', 'RAISED', 'USED', 'QUOTA'], rows },
  };
}

const alarmList: CommandModule<object, Args> = {
  command: 'list',
  describe: 'the cluster\'s active alarms (NO_SPACE: a member\'s store past --quota-bytes; it clears by itself once back under)',
  builder: (y) => y.example('$0 alarm list', 'every active alarm').example('$0 alarm list -o json', 'a JSON array of alarms'),
  handler: action(async (ctx) => {
    ctx.out.print(alarmListResult(await ctx.client.alarms()));
  }),
};

export const alarmCommand: CommandModule<object, Args> = {
  command: 'alarm <command>',
  describe: 'the cluster\'s alarms: list',
  builder: (y) => y.command([alarmList]).demandCommand(1, 'say which: list'),
  handler: () => undefined,
};
