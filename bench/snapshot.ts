/**
 * `npm run bench:snapshot`: how fast a backup is saved and restored, for Warden and for etcd 3.4
 * (../shared/anchors) holding the same bytes. Each system is filled with --mib MiB of random
 * (incompressible) values of --value-kib KiB, then:
 * - Warden: `warden snapshot save` from the leader (the CLI as a real process, its own timing
 *   and the wall clock with process start), then `warden snapshot restore` of that file into a
 *   fresh data directory;
 * - etcd: `etcdctl snapshot save` from its leader, then `etcdctl snapshot restore`.
 * MiB/s is the file's size over the time; the ratio is Warden ÷ etcd. etcd's keys are deleted,
 * compacted and defragmented afterwards, so the anchor is left as small as it was.
 *
 * Flags: --mib N (default 1024), --value-kib N (default 512), --only warden|etcd.
 *
 * Must never: run in CI (it fills a gigabyte and starts the anchors); leave members, files or
 * an anchor it started behind.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { connect } from '../client/index.js';
import { Cluster } from '../test/integration/cluster.js';
import { ensureAnchor, ETCD_ENDPOINTS, etcdLeader, stopAnchor } from './anchors.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, 'value-kib': { type: 'string', default: '512' }, only: { type: 'string' } } });
const MIB = Number(values.mib);
const VALUE_BYTES = Number(values['value-kib']) * 1024;
const COUNT = Math.ceil((MIB * 1024 * 1024) / VALUE_BYTES);
const IN_FLIGHT = 8;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'warden-bench-snapshot-'));

// Ctrl-C or SIGTERM: the members and files go with the bench (the anchors.ts stop covers etcd).
const running = new Set<Cluster>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.allSettled([...running].map((c) => c.stop())).then(() => {
      rmSync(work, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

const mibOf = (bytes: number): number => bytes / (1024 * 1024);
const line = (text: string): void => void process.stdout.write(`${text}\n`);

/** Run `count` puts, IN_FLIGHT at a time. */
async function fill(put: (i: number, value: Uint8Array) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < COUNT) {
        const i = next++;
        await put(i, randomBytes(VALUE_BYTES));
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/** A command's wall time in seconds; throws with its output if it fails. */
function timed(command: string, args: readonly string[], env: Record<string, string> = {}): { seconds: number; stdout: string } {
  const started = performance.now();
  const result = spawnSync(command, args, { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return { seconds, stdout: result.stdout };
}

interface Figures {
  readonly fillS: number;
  readonly fileBytes: number;
  readonly saveS: number;
  readonly restoreS: number;
}

async function warden(): Promise<Figures> {
  const cluster = await Cluster.start(3);
  running.add(cluster);
  try {
    const leader = await cluster.leader();
    const client = connect({ endpoints: cluster.members.map((m) => m.clientUrl), timeoutMs: 60_000 });
    const fillS = await fill((i, value) => client.put(`/bench/snapshot/${String(i).padStart(6, '0')}`, value));
    await client.close();
    const file = join(work, 'warden.wsnap');
    const cli = ['--import', 'tsx', 'client/cli/main.ts'];
    const saved = timed(process.execPath, [...cli, '--endpoints', cluster.member(leader).clientUrl, 'snapshot', 'save', file, '-o', 'json']);
    const facts = JSON.parse(saved.stdout) as { seconds: number; nodes: number; revision: number };
    const saveS = facts.seconds;
    // Every put acknowledged before the save is in it: COUNT nodes and their two parents.
    if (facts.nodes !== COUNT + 2) throw new Error(`the snapshot holds ${facts.nodes} nodes, not the ${COUNT + 2} written before it`);
    const restored = timed(process.execPath, [...cli, 'snapshot', 'restore', file, '--data-dir', join(work, 'warden-restored'), '--name', 'n1', '--initial-cluster', 'n1=ws://127.0.0.1:1', '-o', 'json']);
    const restoreS = (JSON.parse(restored.stdout) as { seconds: number }).seconds;
    line(`  warden: revision ${facts.revision}, ${facts.nodes} nodes; save ${saved.seconds.toFixed(1)} s wall with the CLI's start, restore ${restored.seconds.toFixed(1)} s wall`);
    return { fillS, fileBytes: statSync(file).size, saveS, restoreS };
  } finally {
    await cluster.stop();
    running.delete(cluster);
  }
}

async function etcd(): Promise<Figures> {
  const started = ensureAnchor('etcd');
  const client = new Etcd3({ hosts: ETCD_ENDPOINTS.map((e) => `http://${e}`) });
  try {
    const fillS = await fill((i, value) => client.put(`/bench/snapshot/${String(i).padStart(6, '0')}`).value(Buffer.from(value)).exec());
    const file = join(work, 'etcd.db');
    const env = { ETCDCTL_API: '3' };
    const saved = timed('etcdctl', ['--endpoints', etcdLeader().endpoint, 'snapshot', 'save', file], env);
    const restored = timed('etcdctl', ['snapshot', 'restore', file, '--data-dir', join(work, 'etcd-restored'), '--name', 'r1', '--initial-cluster', 'r1=http://127.0.0.1:1', '--initial-advertise-peer-urls', 'http://127.0.0.1:1'], env);
    return { fillS, fileBytes: statSync(file).size, saveS: saved.seconds, restoreS: restored.seconds };
  } finally {
    // Leave the anchor as small as it was: the keys gone, their history compacted, the file defragmented.
    // A defragmentation of a gigabyte outlasts etcdctl's 5 s default; a failed clean-up is said, not thrown over the figures.
    const env = { ...process.env, ETCDCTL_API: '3' };
    try {
      const deleted = await client.delete().prefix('/bench/snapshot/');
      execFileSync('etcdctl', ['--endpoints', ETCD_ENDPOINTS.join(','), '--command-timeout', '300s', 'compact', String(deleted.header.revision)], { env, stdio: 'ignore' });
      execFileSync('etcdctl', ['--endpoints', ETCD_ENDPOINTS.join(','), '--command-timeout', '300s', 'defrag'], { env, stdio: 'ignore' });
    } catch (error) {
      line(`  etcd: the clean-up failed (${(error as Error).message.split('\n')[0]}); the anchor may hold the bench's keys`);
    }
    client.close();
    if (started) stopAnchor('etcd');
  }
}

function report(name: string, f: Figures): void {
  const size = mibOf(f.fileBytes);
  line(`${name.padEnd(7)} fill ${(MIB / f.fillS).toFixed(1).padStart(6)} MiB/s   file ${size.toFixed(0).padStart(5)} MiB   save ${f.saveS.toFixed(2).padStart(6)} s = ${(size / f.saveS).toFixed(1).padStart(6)} MiB/s   restore ${f.restoreS.toFixed(2).padStart(6)} s = ${(size / f.restoreS).toFixed(1).padStart(6)} MiB/s`);
}

try {
  line(`snapshot save and restore: ${MIB} MiB of random values, ${COUNT} × ${VALUE_BYTES / 1024} KiB`);
  const w = values.only === 'etcd' ? null : await warden();
  if (w !== null) report('warden', w);
  const e = values.only === 'warden' ? null : await etcd();
  if (e !== null) report('etcd', e);
  if (w !== null && e !== null) {
    line(`ratio warden ÷ etcd (MiB/s): save ${((mibOf(w.fileBytes) / w.saveS) / (mibOf(e.fileBytes) / e.saveS)).toFixed(2)}, restore ${((mibOf(w.fileBytes) / w.restoreS) / (mibOf(e.fileBytes) / e.restoreS)).toFixed(2)}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
