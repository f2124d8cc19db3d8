/**
 * `warden` against a real 3-member cluster, run as a real process: the namespace commands, txn,
 * leases, members and endpoints — output in each format, and exit codes (0 success, 1 a failed
 * operation with its code on stderr, 2 bad usage with a message).
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSuite, RunningCli, runCli, type CliResult } from './run.js';

const suite = cliSuite();
const w = (args: string[], input?: string): Promise<CliResult> => runCli(args, { endpoints: suite.endpoints, ...(input === undefined ? {} : { input }) });

describe('warden CLI: usage', () => {
  it('exits 2 with a helpful message on bad usage', async () => {
    const [none, unknown, missing, relative, format, notNumber] = await Promise.all([
      w([]),
      w(['bogus']),
      w(['get']),
      w(['get', 'relative/path']),
      w(['get', '/x', '--output', 'xml']),
      w(['compact', 'abc']),
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Say which command/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown argument: bogus/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Not enough non-option arguments/);
    expect(relative.code).toBe(2);
    expect(relative.stderr).toMatch(/a path starts with "\/"/);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/Invalid values/);
    expect(notNumber.code).toBe(2);
    expect(notNumber.stderr).toMatch(/expected a whole number/);
    for (const r of [none, unknown, missing, relative]) expect(r.stderr).toMatch(/--help/);
  });

  it('has --help with examples, and a completion script', async () => {
    const [help, getHelp, completion] = await Promise.all([w(['--help']), w(['get', '--help']), w(['completion'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Examples:/);
    expect(getHelp.stdout).toMatch(/warden get \/config\/db/);
    expect(completion.code).toBe(0);
    expect(completion.stdout).toMatch(/warden/);
    expect(completion.stdout).toMatch(/complete/);
  });
});

describe('warden CLI: the namespace', () => {
  it('puts and gets in each format', async () => {
    const put = await w(['put', '/cli/a', 'hello world']);
    expect(put).toMatchObject({ code: 0, stdout: 'OK\n' });
    const fromStdin = await w(['put', '/cli/b', '-'], 'line one\nline two');
    expect(fromStdin.code).toBe(0);
    const [simple, json, table, stdinValue] = await Promise.all([
      w(['get', '/cli/a', '-o', 'simple']),
      w(['get', '/cli/a', '-o', 'json']),
      w(['get', '/cli/a', '-o', 'table']),
      w(['get', '/cli/b', '-o', 'simple', '--consistency', 'serializable']),
    ]);
    expect(simple).toMatchObject({ code: 0, stdout: 'hello world\n' });
    const node = JSON.parse(json.stdout) as { path: string; value: string; stat: { version: number } };
    expect(node).toMatchObject({ path: '/cli/a', value: 'hello world', stat: { version: 0 } });
    expect(table.stdout).toMatch(/^FIELD\s+VALUE\n/);
    expect(table.stdout).toMatch(/version\s+0/);
    expect(stdinValue.stdout).toBe('line one\nline two\n');
    // WARDEN_OUTPUT picks the format; other WARDEN_* variables (wardend's, or the token `lock` passes) are not options.
    const fromEnv = await runCli(['get', '/cli/a'], { endpoints: suite.endpoints, env: { WARDEN_OUTPUT: 'json', WARDEN_FENCING_TOKEN: '5', WARDEN_DATA_DIR: '/tmp/x' } });
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ value: 'hello world' });
  });

  it('fails with exit 1 and the error code: a missing node, an existing one, a bad version', async () => {
    await w(['put', '/cli/exists', 'x']);
    const [missing, exists, badVersion] = await Promise.all([w(['get', '/cli/nope']), w(['create', '/cli/exists', 'y']), w(['del', '/cli/exists', '--if-version', '7'])]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/NO_NODE/);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toMatch(/Error: NODE_EXISTS: .*retrying the same request will fail again/);
    expect(badVersion.code).toBe(1);
    expect(badVersion.stderr).toMatch(/BAD_VERSION/);
  });

  it('creates sequential, with parents; lists, draws the tree, deletes', async () => {
    const seq1 = await w(['create', '/cli/q/job-', 'a', '--sequential', '--parents']);
    const seq2 = await w(['create', '/cli/q/job-', 'b', '--sequential']);
    expect(seq1.code).toBe(0);
    expect(seq1.stdout).toMatch(/^\/cli\/q\/job-\d+\n$/);
    expect(seq2.stdout.trim() > seq1.stdout.trim()).toBe(true);
    expect((await w(['create', '/cli/t/x/y', 'leaf', '--parents'])).code).toBe(0);
    await w(['put', '/cli/t/x', 'mid']);
    const [ls, lsJson, lsTable, tree, treeJson, treeTable, bounded] = await Promise.all([
      w(['ls', '/cli/q']),
      w(['ls', '/cli/q', '-o', 'json']),
      w(['ls', '/cli/q', '-o', 'table']),
      w(['tree', '/cli/t']),
      w(['tree', '/cli/t', '-o', 'json']),
      w(['tree', '/cli/t', '-o', 'table']),
      w(['tree', '/cli', '--max-nodes', '2']),
    ]);
    const names = [seq1.stdout.trim(), seq2.stdout.trim()].map((p) => p.slice('/cli/q/'.length));
    expect(ls.stdout).toBe(`${names.join('\n')}\n`);
    expect(JSON.parse(lsJson.stdout)).toEqual({ path: '/cli/q', children: names });
    expect(lsTable.stdout).toMatch(/^NAME\n/);
    expect(tree.stdout).toBe('/cli/t (v0)\n  x (v1) = mid\n    y (v0) = leaf\n');
    expect(JSON.parse(treeJson.stdout)).toMatchObject({ path: '/cli/t', nodes: 3, truncated: false, children: [{ path: '/cli/t/x', value: 'mid', children: [{ path: '/cli/t/x/y' }] }] });
    expect(treeTable.stdout).toBe('/cli/t (v0)\n└── x (v1) = mid\n    └── y (v0) = leaf\n');
    expect(bounded.stdout).toMatch(/more nodes not shown \(--max-nodes 2\)/);
    const notEmpty = await w(['del', '/cli/t']);
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toMatch(/NOT_EMPTY/);
    const recursive = await w(['del', '/cli/t', '--recursive', '-o', 'json']);
    expect(recursive.code).toBe(0);
    expect(JSON.parse(recursive.stdout)).toMatchObject({ deleted: 3 });
  });

  it('compacts: reads below the mark fail COMPACTED', async () => {
    const first = JSON.parse((await w(['put', '/cli/c', 'one', '-o', 'json'])).stdout) as { revision: number };
    const second = JSON.parse((await w(['put', '/cli/c', 'two', '-o', 'json'])).stdout) as { revision: number };
    const old = await w(['get', '/cli/c', '--rev', String(first.revision)]);
    expect(old.stdout).toBe('one\n');
    const compact = await w(['compact', String(second.revision)]);
    expect(compact).toMatchObject({ code: 0, stdout: `compacted revision ${second.revision}\n` });
    const gone = await w(['get', '/cli/c', '--rev', String(first.revision)]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/COMPACTED/);
  });
});

describe('warden CLI: txn', () => {
  it('runs a txn from stdin (both branches), from a file and as lines (-i); bad JSON is exit 2', async () => {
    await w(['put', '/cli/cfg', 'v1']);
    const txn = (operand: number): string =>
      JSON.stringify({ compare: [{ path: '/cli/cfg', target: 'version', operator: '=', operand }], success: [{ op: 'put', path: '/cli/cfg', value: 'v2' }, { op: 'get', path: '/cli/cfg' }], failure: [{ op: 'get', path: '/cli/cfg' }] });
    const ok = await w(['txn'], txn(0));
    expect(ok).toMatchObject({ code: 0, stdout: 'SUCCESS\nOK\nv2\n' });
    const failed = await w(['txn', '-o', 'json'], txn(0));
    expect(failed.code).toBe(0);
    expect(JSON.parse(failed.stdout)).toMatchObject({ succeeded: false, results: [{ op: 'get', node: { value: 'v2' } }] });
    const dir = mkdtempSync(join(tmpdir(), 'warden-cli-txn-'));
    writeFileSync(join(dir, 'txn.json'), JSON.stringify({ compare: [{ path: '/cli/cfg', target: 'value', operator: '=', operand: 'v2' }, { path: '/cli/none', target: 'exists', operand: false }], success: [{ op: 'create', path: '/cli/none', value: 'made' }] }));
    const fromFile = await w(['txn', '--file', join(dir, 'txn.json'), '-o', 'table']);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toMatch(/^SUCCESS at revision \d+\n\/cli\/none\n$/);
    const lines = await w(['txn', '-i'], 'value /cli/none = made\n\ndel /cli/none\nget /cli/cfg\n\nget /cli/none\n');
    expect(lines).toMatchObject({ code: 0, stdout: 'SUCCESS\n1\nv2\n' });
    const [bad, unknownField] = await Promise.all([w(['txn'], '{not json'), w(['txn'], JSON.stringify({ success: [{ op: 'put', path: '/x', value: 'y', colour: 1 }] }))]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not valid JSON/);
    expect(unknownField.code).toBe(2);
    expect(unknownField.stderr).toMatch(/unknown field "colour"/);
  });
});

describe('warden CLI: leases', () => {
  it('grants, lists, shows ttl and paths, keeps alive until Ctrl-C, revokes', async () => {
    const grant = await w(['lease', 'grant', '6000']);
    expect(grant.code).toBe(0);
    const id = grant.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    // Kept alive (renewed every third of its TTL) while the rest runs.
    const keep = new RunningCli(['lease', 'keepalive', id], { endpoints: suite.endpoints });
    await keep.waitFor(/renewed/);
    expect((await w(['create', '/cli/eph', 'e', '--lease', id, '--parents'])).code).toBe(0);
    const [ttl, ttlJson, list] = await Promise.all([w(['lease', 'ttl', id, '--paths']), w(['lease', 'ttl', id, '-o', 'json']), w(['lease', 'list', '-o', 'table'])]);
    expect(ttl.stdout).toMatch(new RegExp(`^lease ${id} ttl 6000 remaining \\d+\\n/cli/eph\\n$`));
    expect(JSON.parse(ttlJson.stdout)).toMatchObject({ id: Number(id), ttlMs: 6000 });
    expect(list.stdout).toMatch(/^ID\s+TTL \(ms\)\n/);
    expect(list.stdout).toContain(id);
    expect(await keep.stop('SIGINT')).toMatchObject({ code: 0 });
    const revoke = await w(['lease', 'revoke', id]);
    expect(revoke).toMatchObject({ code: 0, stdout: `lease ${id} revoked\n` });
    const [eph, ttlGone] = await Promise.all([w(['get', '/cli/eph']), w(['lease', 'ttl', id])]);
    expect(eph.code).toBe(1);
    expect(ttlGone.code).toBe(1);
    expect(ttlGone.stderr).toMatch(/LEASE_NOT_FOUND/);
  });
});

describe('warden CLI: members and endpoints', () => {
  it('lists members and shows every endpoint\'s status and health', async () => {
    const leader = await suite.cluster.leader();
    const [members, membersJson, status, statusJson, health] = await Promise.all([
      w(['member', 'list', '-o', 'table']),
      w(['member', 'list', '-o', 'json']),
      w(['endpoint', 'status', '-o', 'table']),
      w(['endpoint', 'status', '-o', 'json']),
      w(['endpoint', 'health']),
    ]);
    expect(members.stdout).toMatch(/^NAME\s+ROLE\s+PEER URL\s+CLIENT URL\s+LEADER\s+LAG\n/);
    expect(members.stdout).toMatch(new RegExp(`${leader}\\s+voter\\s+\\S+\\s+\\S+\\s+true`));
    const listed = JSON.parse(membersJson.stdout) as { name: string; role: string; isLeader: boolean }[];
    expect(listed.map((m) => m.name).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(listed.filter((m) => m.isLeader).map((m) => m.name)).toEqual([leader]);
    expect(listed.every((m) => m.role === 'voter')).toBe(true);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^ENDPOINT\s+NAME\s+ID\s+LEADER\s+TERM\s+COMMIT\s+APPLIED\s+REVISION\s+DB SIZE\s+WAL SIZE\s+RTT \(ms\)\s+LOOP LAG p99 \(ms\)\s+ERROR\n/);
    for (const m of suite.cluster.members) expect(status.stdout).toContain(m.clientUrl);
    const rows = JSON.parse(statusJson.stdout) as { status: { name: string; leader: string } }[];
    expect(rows.map((r) => r.status.name).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(rows.every((r) => r.status.leader === leader)).toBe(true);
    expect(health.code).toBe(0);
    expect(health.stdout.match(/is healthy/g)?.length).toBe(3);
    // An endpoint nobody listens on: its row says so, and the command fails.
    const withDead = await runCli(['endpoint', 'health', '--timeout', '1500'], { endpoints: `${suite.endpoints},ws://127.0.0.1:9` });
    expect(withDead.code).toBe(1);
    expect(withDead.stdout).toMatch(/ws:\/\/127\.0\.0\.1:9 is unhealthy: UNAVAILABLE/);
  });
});

describe('warden check perf', () => {
  it('runs a short load, says pass or fail (exit code to match), and leaves nothing behind', async () => {
    const result = await runCli(['check', 'perf', '--duration', '2', '--prefix', '/perf-scratch', '-o', 'json'], { endpoints: suite.endpoints, timeoutMs: 30_000 });
    const report = JSON.parse(result.stdout) as { pass: boolean; puts: number; checks: { check: string; pass: boolean }[]; latencyMs: { max: number } };
    expect(result.code).toBe(report.pass ? 0 : 1);
    expect(report.puts).toBeGreaterThan(0);
    expect(report.checks.map((c) => c.check)).toEqual(['throughput', 'slowest put', 'latency stddev', 'failed puts']);
    const [gone, table] = await Promise.all([w(['get', '/perf-scratch']), w(['check', 'perf', '--duration', '1', '--prefix', '/perf-scratch2', '-o', 'table'])]);
    expect(gone.code).toBe(1);
    expect(table.stdout).toMatch(/^CHECK\s+RESULT\s+MEASURED\s+NEEDED\n/);
    expect(table.stdout).toMatch(/overall\s+(PASS|FAIL)/);
  });
});
