/**
 * `warden member` (client/cli/commands/cluster.ts): what `member list` and a change print, and
 * how names and peer URLs are read, in process; the commands' bad usage (exit 2, before any
 * connection) and the note `member add` prints while it waits, as real processes with no
 * cluster behind them. The commands against a real cluster live with the lead's integration tests.
 */

import { describe, expect, it } from 'vitest';
import type { MemberInfo } from '../../client/api.js';
import { alarmListResult, memberChangeResult, memberListResult, memberName, peerUrlOf } from '../../client/cli/commands/cluster.js';
import { Output, UsageError, type Table } from '../../client/cli/output.js';
import { runCli } from './run.js';

const MEMBERS: MemberInfo[] = [
  { name: 'n1', role: 'voter', peerUrl: 'ws://10.0.0.1:7081', clientUrl: 'ws://10.0.0.1:7071', isLeader: true, lag: 0 },
  { name: 'n4', role: 'learner', peerUrl: 'ws://10.0.0.4:7081', clientUrl: null, isLeader: false, lag: null },
];

const plain = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, '');

describe('warden member: output', () => {
  it('lists members as a table (NAME, ROLE, PEER URL, CLIENT URL, LEADER, LAG), a JSON array, or simple lines', () => {
    const result = memberListResult(MEMBERS);
    expect(result.json).toEqual(MEMBERS);
    expect(JSON.parse(JSON.stringify(result.json))).toEqual(MEMBERS); // `-o json`: the array as is
    expect(result.simple).toEqual(['n1, voter, ws://10.0.0.1:7081, ws://10.0.0.1:7071, true, 0', 'n4, learner, ws://10.0.0.4:7081, -, false, -']);
    const lines = new Output('table').renderTable(result.table as Table).map(plain);
    expect(lines[0]).toMatch(/^NAME\s+ROLE\s+PEER URL\s+CLIENT URL\s+LEADER\s+LAG$/);
    expect(lines[1]).toMatch(/^n1\s+voter\s+ws:\/\/10\.0\.0\.1:7081\s+ws:\/\/10\.0\.0\.1:7071\s+true\s+0$/);
    expect(lines[2]).toMatch(/^n4\s+learner\s+ws:\/\/10\.0\.0\.4:7081\s+-\s+false\s+-$/);
  });

  it('prints a change as one line, and as the member with its revision in json', () => {
    const result = memberChangeResult('member n4 promoted to voter', { revision: 12, member: { name: 'n4', role: 'voter', peerUrl: 'ws://10.0.0.4:7081' } });
    expect(result.simple).toEqual(['member n4 promoted to voter']);
    expect(result.json).toEqual({ name: 'n4', role: 'voter', peerUrl: 'ws://10.0.0.4:7081', revision: 12 });
    expect(result.table).toBeUndefined();
  });
});

describe('warden member: arguments', () => {
  it('reads a name (a number yargs parsed included) and a ws:// or wss:// peer URL', () => {
    expect(memberName('n4')).toBe('n4');
    expect(memberName(7)).toBe('7');
    expect(peerUrlOf('ws://10.0.0.4:7081')).toBe('ws://10.0.0.4:7081');
    expect(peerUrlOf('wss://n4.example:7081')).toBe('wss://n4.example:7081');
  });

  it('refuses an empty name and a peer URL that is not ws:// or wss:// as bad usage', () => {
    for (const bad of [() => memberName(''), () => memberName(undefined), () => peerUrlOf('http://10.0.0.4:7081'), () => peerUrlOf('10.0.0.4:7081'), () => peerUrlOf(''), () => peerUrlOf('ws://')]) {
      expect(bad).toThrow(UsageError);
    }
    expect(() => peerUrlOf('10.0.0.4:7081')).toThrow(/PEER_URL: a ws:\/\/ or wss:\/\/ URL/);
  });
});

describe('warden member: bad usage exits 2 before connecting', () => {
  // Nothing listens here: a command that got past its usage checks fails to connect (exit 1).
  const nowhere = { endpoints: 'ws://127.0.0.1:9', env: { WARDEN_USER: '', WARDEN_PASSWORD: '', WARDEN_TIMEOUT: '1500' } };

  it('refuses a missing peer URL, a bad one, a missing name and an unknown subcommand', async () => {
    const [noUrl, badUrl, noName, unknown] = await Promise.all([
      runCli(['member', 'add', 'n4'], nowhere),
      runCli(['member', 'add', 'n4', 'http://10.0.0.4:7081'], nowhere),
      runCli(['member', 'promote'], nowhere),
      runCli(['member', 'rename', 'n4'], nowhere),
    ]);
    for (const r of [noUrl, badUrl, noName, unknown]) expect(r.code, r.stderr).toBe(2);
    expect(noUrl.stderr).toMatch(/Not enough non-option arguments/);
    expect(badUrl.stderr).toMatch(/PEER_URL: a ws:\/\/ or wss:\/\/ URL/);
    expect(noName.stderr).toMatch(/Not enough non-option arguments/);
    expect(unknown.stderr).toMatch(/Did you mean remove\?/);
  });

  it('parses well-formed commands through to the connection (exit 1), `add` noting on stderr that it waits unless --learner', async () => {
    const [add, learner, promote, remove] = await Promise.all([
      runCli(['member', 'add', 'n4', 'ws://10.0.0.4:7081', '-o', 'json'], nowhere),
      runCli(['member', 'add', 'n4', 'ws://10.0.0.4:7081', '--learner'], nowhere),
      runCli(['member', 'promote', 'n4'], nowhere),
      runCli(['member', 'remove', 'n2'], nowhere),
    ]);
    for (const r of [add, learner, promote, remove]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/UNAVAILABLE/);
      expect(r.stdout).toBe(''); // notes and errors never on stdout
    }
    expect(add.stderr).toMatch(/waiting for it to catch up with the leader before it is promoted to voter \(up to 2 s; --learner does not wait\)/);
    expect(learner.stderr).not.toMatch(/waiting/);
  });

  it('lists the member commands in --help', async () => {
    const help = await runCli(['member', '--help']);
    for (const command of ['list', 'add <name> <peer-url>', 'promote <name>', 'remove <name>']) expect(help.stdout).toContain(command);
  });
});

describe('warden alarm list: output', () => {
  it('lists alarms as a table (MEMBER, ALARM, RAISED, USED, QUOTA), a JSON array, or simple lines', () => {
    const alarms = [{ member: 'n2', kind: 'NO_SPACE' as const, raisedAtMs: Date.UTC(2026, 11, 4, 12, 0, 0), usedBytes: 5 * 1024 * 1024, quotaBytes: 4 * 1024 * 1024 }];
    const result = alarmListResult(alarms);
    expect(result.json).toEqual(alarms);
    expect(result.simple).toEqual([`n2, NO_SPACE, ${5 * 1024 * 1024}, ${4 * 1024 * 1024}`]);
    const lines = new Output('table').renderTable(result.table as Table).map(plain);
    expect(lines[0]).toMatch(/^MEMBER\s+ALARM\s+RAISED\s+USED\s+QUOTA$/);
    expect(lines[1]).toMatch(/^n2\s+NO_SPACE\s+2026-12-04T12:00:00\.000Z\s+5\.0 MiB\s+4\.0 MiB$/);
    expect(alarmListResult([]).simple).toEqual([]);
  });
});
