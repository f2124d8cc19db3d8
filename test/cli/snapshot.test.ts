/**
 * `warden snapshot save|status|restore` against real members, the CLI as a real process:
 * a snapshot saved from one cluster and restored into a new 3-member cluster serves the same
 * nodes (values, stats, history) at the same revision, and takes writes after it; a damaged or
 * cut file is refused by `status` and `restore` alike and leaves no member that could start;
 * and the member's side of the protocol holds to its limits (streams at once, idle time, order).
 */

import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type WardenClient, type WardenNode } from '../../client/index.js';
import { Cluster, ProtocolClient } from '../integration/cluster.js';
import { killAll, runCli } from './run.js';

let source: Cluster;
let restored: Cluster | null = null;
let client: WardenClient;
let endpoints: string;
let file: string;
/** Every node of the source under /app, at the revision the snapshot was taken. */
let nodes: WardenNode<Uint8Array>[];
let revision: number;
/** The revision of the first of /app/versioned's three writes. */
let firstVersionAt: number;

async function all(c: WardenClient, at?: number): Promise<WardenNode<Uint8Array>[]> {
  const out: WardenNode<Uint8Array>[] = [];
  for await (const node of c.range('/app', { as: 'bytes', ...(at === undefined ? {} : { revision: at }) })) out.push(node);
  return out;
}

beforeAll(async () => {
  source = await Cluster.start(3, { extraArgs: ['--max-snapshot-idle-ms', '1500', '--max-snapshot-streams', '2'] });
  await source.leader();
  endpoints = source.members.map((m) => m.clientUrl).join(',');
  client = connect({ endpoints });
  // Values of many sizes (binary among them) across several chunks, a deleted node (history), a
  // lease with an ephemeral node on it, and a node written three times (versions).
  const big = new Uint8Array(300 * 1024).map((_, i) => (i * 7) % 256);
  await Promise.all(Array.from({ length: 12 }, (_, i) => client.put(`/app/big/${i}`, big.subarray(i))));
  await Promise.all(Array.from({ length: 400 }, (_, i) => client.create(`/app/small/${String(i).padStart(3, '0')}`, `value ${i}`, { parents: true })));
  firstVersionAt = (await client.put('/app/versioned', 'v0')).revision;
  for (let v = 1; v < 3; v++) await client.put('/app/versioned', `v${v}`);
  await client.delete('/app/small/007');
  const session = await client.session({ ttlMs: 60_000 });
  await client.create('/app/ephemeral', 'mine', { lease: session.lease });
  nodes = await all(client);
  revision = (await client.status()).revision as number;
  file = join(source.dataRoot, 'backup.wsnap');
}, 90_000);

afterAll(async () => {
  killAll();
  await client?.close();
  await restored?.stop();
  await source?.stop();
});

describe('warden snapshot', () => {
  it('saves a snapshot with its revision and checksum, and status reads it back in each format', async () => {
    const saved = await runCli(['snapshot', 'save', file, '-o', 'json'], { endpoints, timeoutMs: 60_000 });
    expect(saved.stderr).toBe('');
    expect(saved.code).toBe(0);
    const facts = JSON.parse(saved.stdout) as Record<string, unknown>;
    expect(facts['revision']).toBe(revision);
    expect(facts['nodes']).toBe(nodes.length + 1); // and /app itself
    expect(facts['size']).toBe(statSync(file).size);
    expect(existsSync(`${file}.part`)).toBe(false);

    const [json, table, simple] = await Promise.all([
      runCli(['snapshot', 'status', file, '-o', 'json']),
      runCli(['snapshot', 'status', file, '-o', 'table']),
      runCli(['snapshot', 'status', file, '-o', 'simple']),
    ]);
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ revision, nodes: nodes.length + 1, leases: 1, sha256: facts['sha256'], size: facts['size'], voters: ['n1', 'n2', 'n3'] });
    expect(status['sessions']).toBeGreaterThanOrEqual(1);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^revision\\s+${revision}$`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^sha256\\s+${String(facts['sha256'])}$`, 'm'));
    expect(simple.code).toBe(0);
    expect(simple.stdout).toContain(`revision ${revision}, ${nodes.length + 1} nodes, 1 leases`);
  }, 90_000);

  it('restores into a new 3-member cluster that serves the same data at the same revision', async () => {
    restored = await Cluster.plan(3);
    const target = restored;
    const results = await Promise.all(
      target.members.map((m) => runCli(['snapshot', 'restore', file, '--data-dir', target.dataDirOf(m.name), '--name', m.name, '--initial-cluster', target.initialClusterSpec, '-o', 'json'], { timeoutMs: 60_000 })),
    );
    for (const result of results) {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ revision, voters: ['n1', 'n2', 'n3'] });
    }
    // A cluster of its own: one identity for the three, not the source's (whose members would be refused).
    const ids = target.members.map((m) => readFileSync(join(target.dataDirOf(m.name), 'cluster-id'), 'utf8').trim());
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toBe((JSON.parse(results[0]!.stdout) as { clusterId: string }).clusterId);
    expect(ids[0]).not.toBe(readFileSync(join(source.dataDirOf('n1'), 'cluster-id'), 'utf8').trim());
    for (const member of target.members) target.launch(member);
    await target.leader();
    const there = connect({ endpoints: target.members.map((m) => m.clientUrl).join(',') });
    try {
      expect((await there.status()).revision).toBe(revision);
      const got = await all(there);
      expect(got.map((n) => n.path)).toEqual(nodes.map((n) => n.path));
      expect(got).toEqual(nodes);
      // History came along: older versions read as they were.
      expect((await there.get('/app/versioned', { revision: firstVersionAt }))?.value).toBe('v0');
      expect((await there.get('/app/small/007', { revision: firstVersionAt }))?.value).toBe('value 7');
      // The new cluster takes writes after the snapshot's revision, on every member.
      const write = await there.put('/app/after-restore', 'yes');
      expect(write.revision).toBe(revision + 1);
      for (const member of target.members) {
        const one = connect({ endpoints: [member.clientUrl] });
        expect((await one.get('/app/after-restore'))?.value).toBe('yes');
        await one.close();
      }
    } finally {
      await there.close();
    }
  }, 120_000);

  it('refuses a damaged or cut file, with a clear error, and builds nothing from it', async () => {
    const bytes = readFileSync(file);
    const flipped = join(source.dataRoot, 'flipped.wsnap');
    const copy = Buffer.from(bytes);
    copy[Math.floor(copy.length / 2)] ^= 0x40;
    writeFileSync(flipped, copy);
    const cut = join(source.dataRoot, 'cut.wsnap');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 1000));
    const notOne = join(source.dataRoot, 'not-a-snapshot');
    writeFileSync(notOne, 'hello');

    const [a, b, c] = await Promise.all([runCli(['snapshot', 'status', flipped]), runCli(['snapshot', 'status', cut]), runCli(['snapshot', 'status', notOne])]);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/damaged/);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/cut short/);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/not a Warden snapshot file/);

    const spec = 'n1=ws://127.0.0.1:1';
    for (const [damaged, why] of [[flipped, /damaged|checksum/], [cut, /cut short/]] as const) {
      const dir = join(source.dataRoot, `restore-${damaged.endsWith('cut.wsnap') ? 'cut' : 'flipped'}`);
      const result = await runCli(['snapshot', 'restore', damaged, '--data-dir', dir, '--name', 'n1', '--initial-cluster', spec], { timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(why);
      // Nothing a member could start from: no log, no store, and the marker wardend refuses to start beside.
      expect(existsSync(join(dir, 'wal'))).toBe(false);
      expect(existsSync(join(dir, 'state'))).toBe(false);
      expect(existsSync(join(dir, 'RESTORE-INCOMPLETE'))).toBe(true);
    }
    // A member started on such a directory refuses, saying why.
    const lone = await Cluster.plan(1);
    try {
      mkdirSync(lone.dataDirOf('n1'), { recursive: true });
      writeFileSync(join(lone.dataDirOf('n1'), 'RESTORE-INCOMPLETE'), '');
      const member = lone.members[0]!;
      lone.launch(member);
      const exited = await new Promise<number | null>((resolve) => member.process!.once('close', resolve));
      expect(exited).not.toBe(0);
      expect(member.logs.join('\n')).toMatch(/holds a snapshot restore that did not finish/);
    } finally {
      await lone.stop();
    }
  }, 90_000);

  it('refuses a data directory that holds data, and bad usage with exit 2', async () => {
    const busy = join(source.dataRoot, 'busy');
    mkdirSync(join(busy, 'wal'), { recursive: true });
    const intoBusy = await runCli(['snapshot', 'restore', file, '--data-dir', busy, '--name', 'n1', '--initial-cluster', 'n1=ws://127.0.0.1:1']);
    expect(intoBusy.code).toBe(1);
    expect(intoBusy.stderr).toMatch(/is not empty/);
    const notNamed = await runCli(['snapshot', 'restore', file, '--data-dir', join(source.dataRoot, 'x'), '--name', 'n9', '--initial-cluster', 'n1=ws://127.0.0.1:1']);
    expect(notNamed.code).toBe(1);
    expect(notNamed.stderr).toMatch(/does not name this member \(n9\)/);
    const [noDir, noFile] = await Promise.all([runCli(['snapshot', 'restore', file, '--name', 'n1', '--initial-cluster', 'n1=ws://127.0.0.1:1']), runCli(['snapshot', 'status', join(source.dataRoot, 'missing')])]);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/data-dir/);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/no such file/);
    rmSync(busy, { recursive: true, force: true });
  }, 60_000);

  it('holds a member to its snapshot limits: streams at once, order, idle time, and a closed connection', async () => {
    const url = source.members[0]!.clientUrl;
    const [p1, p2, p3] = await Promise.all([ProtocolClient.connect(url), ProtocolClient.connect(url), ProtocolClient.connect(url)]);
    try {
      const first = await p1.request('snapshot');
      const second = await p2.request('snapshot');
      expect(first['ok']).toBe(true);
      expect(second['ok']).toBe(true);
      expect(first['last']).toBe(false);
      // Past --max-snapshot-streams: refused, naming the limit.
      // A second on the same connection: refused (one client cannot take every slot).
      expect((await p1.request('snapshot'))['error']).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/already open on this connection/) });
      const third = await p3.request('snapshot');
      expect(third['ok']).toBe(false);
      expect(third['error']).toMatchObject({ code: 'RESOURCE_EXHAUSTED', outcome: 'retry', limit: { name: 'snapshotStreamsMax', flag: '--max-snapshot-streams', value: 2 } });
      // Out of order, or from another connection: refused, and the stream goes on.
      expect((await p1.request('snapshot', { cursor: first['cursor'], seq: 2 }))['error']).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((await p3.request('snapshot', { cursor: first['cursor'], seq: 1 }))['error']).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await p1.request('snapshot', { cursor: first['cursor'], seq: 1 })).toMatchObject({ ok: true, seq: 1 });
      // A closed connection frees its stream: a new one may open.
      p2.close();
      await expect.poll(async () => (await p3.request('snapshot'))['ok'], { timeout: 10_000, interval: 100 }).toBe(true);
      // Past --max-snapshot-idle-ms without a pull, the member ends the stream.
      await expect
        .poll(async () => (await p1.request('snapshot', { cursor: first['cursor'], seq: 99 }))['error'], { timeout: 10_000, interval: 250 })
        .toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/no snapshot .* is open/) });
    } finally {
      p1.close();
      p2.close();
      p3.close();
    }
  }, 60_000);

  it('saves from a member cut off from a quorum only when asked for what it has (serializable)', async () => {
    // Last in this file: it stops two of the source's members for good.
    const alone = source.members[0]!;
    await source.kill('n2');
    await source.kill('n3');
    const lonely = join(source.dataRoot, 'lonely.wsnap');
    const refused = await runCli(['snapshot', 'save', lonely, '--timeout', '2000'], { endpoints: alone.clientUrl, timeoutMs: 30_000 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/UNAVAILABLE/);
    expect(existsSync(lonely)).toBe(false);
    expect(existsSync(`${lonely}.part`)).toBe(false);
    const saved = await runCli(['snapshot', 'save', lonely, '--consistency', 'serializable', '-o', 'json'], { endpoints: alone.clientUrl, timeoutMs: 30_000 });
    expect(saved.stderr).toBe('');
    expect(saved.code).toBe(0);
    expect(JSON.parse(saved.stdout)).toMatchObject({ member: 'n1', revision, nodes: nodes.length + 1 });
  }, 60_000);
});

