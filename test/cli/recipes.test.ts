/**
 * `warden watch`, `lock` and `elect` against a real 3-member cluster, each a real process: a
 * watch prints an event another CLI put made and ends with exit 0 on Ctrl-C; `lock NAME -- cmd`
 * serialises two commands started at once (their lines in a shared file do not interleave) and
 * hands them increasing fencing tokens; `elect` holds office until Ctrl-C while `elect
 * --observe` prints the leader.
 */

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSuite, RunningCli, runCli } from './run.js';

const suite = cliSuite();

describe('warden watch', () => {
  it('prints events made by another CLI, in simple and json, and exits 0 on Ctrl-C', async () => {
    const simple = new RunningCli(['watch', '/cfg', '--scope', 'subtree', '-o', 'simple'], { endpoints: suite.endpoints });
    const json = new RunningCli(['watch', '/cfg/a', '-o', 'json'], { endpoints: suite.endpoints });
    await Promise.all([simple.waitFor(/watching \/cfg/, 'stderr'), json.waitFor(/watching \/cfg\/a/, 'stderr')]);
    expect((await runCli(['put', '/cfg/a', 'one two'], { endpoints: suite.endpoints })).code).toBe(0);
    expect((await runCli(['del', '/cfg/a'], { endpoints: suite.endpoints })).code).toBe(0);
    await Promise.all([simple.waitFor(/^DELETE \/cfg\/a \d+$/m), json.waitFor(/"delete"/)]);
    const [s, j] = await Promise.all([simple.stop('SIGINT'), json.stop('SIGINT')]);
    expect(s.code).toBe(0);
    expect(j.code).toBe(0);
    expect(s.stdout).toMatch(/^CREATE \/cfg\/a (\d+) one two$/m);
    const events = j.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; path: string; revision: number; value: string | null });
    expect(events.map((e) => [e.type, e.path, e.value])).toEqual([
      ['create', '/cfg/a', 'one two'],
      ['delete', '/cfg/a', null],
    ]);
    expect(events[1]!.revision).toBeGreaterThan(events[0]!.revision);
  });
});

describe('warden lock', () => {
  it('serialises two commands started at once and passes increasing fencing tokens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-cli-lock-'));
    const file = join(dir, 'log');
    // Each command writes start, waits, writes end: run together without the lock they interleave.
    const script = `echo "start $1 $WARDEN_FENCING_TOKEN" >> ${file}; sleep 0.5; echo "end $1 $WARDEN_FENCING_TOKEN" >> ${file}; exit $2`;
    const [a, b] = await Promise.all([
      runCli(['lock', 'jobs', '--', 'sh', '-c', script, 'sh', 'A', '0'], { endpoints: suite.endpoints, timeoutMs: 30_000 }),
      runCli(['lock', 'jobs', '--', 'sh', '-c', script, 'sh', 'B', '7'], { endpoints: suite.endpoints, timeoutMs: 30_000 }),
    ]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(7); // the command's own exit code
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(4);
    const [first, second] = [lines[0]!.split(' ')[1], lines[2]!.split(' ')[1]];
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([`start ${first}`, `end ${first}`, `start ${second}`, `end ${second}`]);
    const tokens = [Number(lines[0]!.split(' ')[2]), Number(lines[2]!.split(' ')[2])];
    expect(tokens[0]).toBeGreaterThan(0);
    expect(tokens[1]).toBeGreaterThan(tokens[0]!);
    expect(a.stderr).toMatch(/holding \/locks\/jobs \(fencing token \d+\)/);
  });

  it('holds without a command until Ctrl-C, then releases', async () => {
    const holder = new RunningCli(['lock', 'held', '-o', 'json'], { endpoints: suite.endpoints });
    await holder.waitFor(/"token":\d+/);
    const { token } = JSON.parse(holder.stdout) as { token: number };
    // Someone else waits at most 1 s: it fails (exit 1) while held.
    const busy = await runCli(['lock', 'held', '--wait', '1000', '--', 'true'], { endpoints: suite.endpoints });
    expect(busy.code).toBe(1);
    expect((await holder.stop('SIGINT')).code).toBe(0);
    const after = await runCli(['lock', 'held', '--wait', '10000', '--', 'sh', '-c', 'echo $WARDEN_FENCING_TOKEN'], { endpoints: suite.endpoints });
    expect(after.code).toBe(0);
    expect(Number(after.stdout.trim())).toBeGreaterThan(token);
  });
});

describe('warden lock: a lost lock', () => {
  it('signals the command (SIGTERM) when the lock is lost, and exits 1', async () => {
    const script = 'trap "echo got-term; exit 143" TERM; echo ready; while true; do sleep 0.1; done';
    const holder = new RunningCli(['lock', 'doomed', '--ttl', '3000', '--', 'sh', '-c', script], { endpoints: suite.endpoints });
    await holder.waitFor(/ready/);
    // Revoke the holder's lease (the only lease here): its queue node goes, the hold is lost.
    const leases = (await runCli(['lease', 'list'], { endpoints: suite.endpoints })).stdout.trim().split('\n').map((line) => line.split(' ')[0]!);
    expect(leases.length).toBeGreaterThan(0);
    for (const id of leases) expect((await runCli(['lease', 'revoke', id], { endpoints: suite.endpoints })).code).toBe(0);
    const result = await holder.exited;
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/got-term/);
    expect(result.stderr).toMatch(/lost \/locks\/doomed/);
  });
});

describe('warden elect', () => {
  it('campaigns and holds office until Ctrl-C; --observe prints the leader', async () => {
    const observer = new RunningCli(['elect', '--observe', 'sched'], { endpoints: suite.endpoints });
    await observer.waitFor(/\(no leader\)/);
    const candidate = new RunningCli(['elect', 'sched', 'node-a', '-o', 'simple'], { endpoints: suite.endpoints });
    await candidate.waitFor(/^\d+\n/);
    const token = Number(candidate.stdout.trim());
    await observer.waitFor(new RegExp(`^node-a ${token} /elections/sched/\\S+$`, 'm'));
    expect((await candidate.stop('SIGINT')).code).toBe(0);
    await observer.waitFor(/\(no leader\)[\s\S]*node-a[\s\S]*\(no leader\)/);
    expect((await observer.stop('SIGINT')).code).toBe(0);
  });
});
