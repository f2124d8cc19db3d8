/**
 * `warden snapshot save|status|restore`: backups and disaster recovery. `save` streams a
 * consistent snapshot of one member's store over the client protocol (`client.snapshot()`) into
 * a file — written beside its final name and renamed only once whole and synced, with a
 * SHA-256 at its end; `status` reads a file through and checks it; `restore` builds a new
 * member's data directory from one, for each member of a new cluster.
 *
 * `restore` writes a member's storage, which is server code; the CLI never loads server code,
 * so it runs the package's restore program (server/restore-main) as a child process and shows
 * its progress — as etcd keeps its restore in etcdutl, beside the client.
 *
 * Must never: leave a file under the given name that is not a whole snapshot (a failed or
 * interrupted save leaves none); call a damaged file good.
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import type { CommandModule } from 'yargs';
import { encodeChunkLength, encodeSnapshotFileEnd, encodeSnapshotFileStart, readSnapshotFile, SNAPSHOT_FILE_FORMAT, type SnapshotFileHeader, type SnapshotFileTrailer } from '../../../shared/snapshot-file.js';
import { bytes, UsageError, type Output } from '../output.js';
import { action } from './context.js';

type Args = Record<string, unknown>;

/** A byte-counting progress bar on stderr, only on a terminal and never with --output json. */
function progressBar(out: Output, label: string, total: number): { update(done: number): void; stop(): void } {
  if (process.stderr.isTTY !== true || out.format === 'json') return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} {bar} {percentage}% | {doneText} of {totalText} | {speed}/s | {eta_formatted}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let max = Math.max(1, total);
  bar.start(max, 0, { doneText: '0 B', totalText: bytes(max), speed: '-' });
  return {
    update(done) {
      // The member's size on disk is an estimate: the bar grows rather than pass 100%.
      if (done > max) {
        max = done;
        bar.setTotal(max);
      }
      bar.update(done, { doneText: bytes(done), totalText: bytes(max), speed: bytes(done / Math.max(0.001, (performance.now() - started) / 1000)) });
    },
    stop: () => bar.stop(),
  };
}

/** Every part of a snapshot file read and checked: its header, trailer, checksum and size. */
async function checkFile(file: string): Promise<{ header: SnapshotFileHeader; trailer: SnapshotFileTrailer; sha256: string; size: number }> {
  if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const size = (await stat(file)).size;
  const sha = createHash('sha256');
  let header: SnapshotFileHeader | null = null;
  for await (const part of readSnapshotFile(createReadStream(file, { highWaterMark: 1024 * 1024 }), { update: (b) => sha.update(b), digest: () => new Uint8Array(sha.digest()) })) {
    if (part.kind === 'header') header = part.header;
    else if (part.kind === 'end') return { header: header!, trailer: part.trailer, sha256: part.sha256, size };
  }
  throw new Error(`${file}: the file ended without its checksum`);
}

/** A snapshot's facts, as rows of a two-column table. */
function factRows(facts: Record<string, unknown>): unknown[][] {
  return Object.entries(facts).map(([key, value]) => [key, value]);
}

const save: CommandModule<object, Args> = {
  command: 'save <file>',
  describe: 'stream a consistent snapshot of a member\'s state into FILE (with a SHA-256)',
  builder: (y) =>
    y
      .positional('file', { type: 'string', describe: 'where to write it (written as FILE.part, renamed when whole)' })
      .option('consistency', { choices: ['linearizable', 'serializable'] as const, default: 'linearizable', describe: 'linearizable: every write acknowledged before the save; serializable: what the member has (one cut off from a quorum)' })
      .example('$0 snapshot save backup.wsnap', 'a backup from the first member that answers')
      .example('$0 --endpoints ws://10.0.0.2:7071 snapshot save n2.wsnap', 'from one member in particular')
      .example('$0 --endpoints ws://10.0.0.3:7071 snapshot save last.wsnap --consistency serializable', 'what a member has, when no quorum is left'),
  handler: action(
    async (ctx, args) => {
      const file = String(args['file']);
      const partial = `${file}.part`;
      const started = performance.now();
      const download = await ctx.client.snapshot({ signal: ctx.signal, consistency: args['consistency'] === 'serializable' ? 'serializable' : 'linearizable' });
      const { info } = download;
      const header: SnapshotFileHeader = { format: SNAPSHOT_FILE_FORMAT, createdAt: new Date().toISOString(), member: info.member, appliedIndex: info.appliedIndex, term: info.term, voters: info.voters };
      // 'wx': a second save to the same name at the same time fails here instead of interleaving.
      const handle = await open(partial, 'wx').catch((error: NodeJS.ErrnoException) => {
        throw error.code === 'EEXIST' ? new Error(`${partial} exists: another save to ${file} is running, or one was killed (remove the file)`) : error;
      });
      const sha = createHash('sha256');
      const bar = progressBar(ctx.out, 'snapshot', info.sizeEstimate);
      let written = 0;
      let chunks = 0;
      let chunkBytes = 0;
      const write = async (part: Uint8Array): Promise<void> => {
        sha.update(part);
        const { bytesWritten } = await handle.write(part);
        if (bytesWritten !== part.length) throw new Error(`${partial}: wrote ${bytesWritten} of ${part.length} bytes (is the disk full?)`);
        written += part.length;
      };
      try {
        await write(encodeSnapshotFileStart(header));
        for await (const chunk of download.chunks()) {
          await write(encodeChunkLength(chunk));
          await write(chunk);
          chunks += 1;
          chunkBytes += chunk.length;
          bar.update(written);
        }
        const summary = download.summary;
        if (summary === null) throw new Error('the member ended the snapshot without its summary');
        const trailer: SnapshotFileTrailer = { chunks, chunkBytes, summary };
        await write(encodeSnapshotFileEnd(trailer));
        const digest = sha.digest();
        const { bytesWritten } = await handle.write(digest);
        if (bytesWritten !== digest.length) throw new Error(`${partial}: the checksum was not written whole (is the disk full?)`);
        written += digest.length;
        await handle.sync();
        await handle.close();
        await rename(partial, file);
        await syncDirectory(dirname(resolve(file))); // the rename itself survives a crash once reported

        bar.stop();
        const seconds = (performance.now() - started) / 1000;
        const facts = { file, member: info.member, revision: summary.revision, appliedIndex: info.appliedIndex, term: info.term, nodes: summary.nodes, size: written, sha256: digest.toString('hex'), seconds: Number(seconds.toFixed(3)) };
        ctx.out.print({
          json: facts,
          simple: [`saved ${file}: revision ${summary.revision}, ${summary.nodes} nodes, ${bytes(written)} from ${info.member} in ${seconds.toFixed(1)} s (${bytes(written / Math.max(seconds, 0.001))}/s)`, `sha256 ${facts.sha256}`],
          table: { columns: ['FIELD', 'VALUE'], rows: factRows({ ...facts, size: bytes(written) }) },
        });
        return 0;
      } catch (error) {
        bar.stop();
        await handle.close().catch(() => undefined);
        await rm(partial, { force: true });
        if (ctx.signal.aborted) {
          ctx.out.note('interrupted: no file was written');
          return 130;
        }
        throw error;
      }
    },
    { long: true },
  ),
};

const status: CommandModule<object, Args> = {
  command: 'status <file>',
  describe: 'read a snapshot file through, check it, and show what it holds',
  builder: (y) => y.positional('file', { type: 'string' }).example('$0 snapshot status backup.wsnap', 'revision, keys, size and checksum; exit 1 if damaged'),
  handler: action(async (ctx, args) => {
    const file = String(args['file']);
    const { header, trailer, sha256, size } = await checkFile(file);
    const s = trailer.summary;
    const facts = { file, revision: s.revision, appliedIndex: header.appliedIndex, term: header.term, nodes: s.nodes, versions: s.versions, leases: s.leases, sessions: s.sessions, compactRevision: s.compactRevision, member: header.member, voters: header.voters.join(','), createdAt: header.createdAt, size, sha256 };
    ctx.out.print({
      json: { ...facts, voters: header.voters },
      simple: [`${file}: revision ${s.revision}, ${s.nodes} nodes, ${s.leases} leases, ${s.sessions} sessions, ${bytes(size)}, taken from ${header.member} at ${header.createdAt}`, `sha256 ${sha256}`],
      table: { columns: ['FIELD', 'VALUE'], rows: factRows({ ...facts, size: bytes(size) }) },
    });
  }),
};

/** The flags of `execArgv` that load code (`--import tsx` in a checkout), for a child to run the same way. */
function loaderFlags(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const flag = execArgv[i]!;
    if (['--import', '--require', '-r', '--loader', '--experimental-loader'].includes(flag) && i + 1 < execArgv.length) kept.push(flag, execArgv[++i]!);
    else if (/^--(import|require|loader|experimental-loader)=/.test(flag)) kept.push(flag);
  }
  return kept;
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The restore program beside this CLI: server/restore-main (.ts in a checkout, .js when built). */
function restoreProgram(): string {
  const own = fileURLToPath(import.meta.url);
  const program = fileURLToPath(new URL(`../../../server/restore-main${extname(own)}`, import.meta.url));
  if (!existsSync(program)) throw new Error(`the restore program is not installed beside this CLI (looked for ${program})`);
  return program;
}

const restore: CommandModule<object, Args> = {
  command: 'restore <file>',
  describe: 'build a new member\'s data directory from a snapshot file (once per member of the new cluster)',
  builder: (y) =>
    y
      .positional('file', { type: 'string' })
      .option('data-dir', { type: 'string', demandOption: true, describe: 'the new member\'s data directory (must be empty or absent)' })
      .option('name', { type: 'string', demandOption: true, describe: 'the new member\'s name, as --initial-cluster spells it' })
      .option('initial-cluster', { type: 'string', demandOption: true, describe: 'every member of the new cluster as name=peerURL, comma-separated' })
      .example('$0 snapshot restore backup.wsnap --data-dir /var/lib/warden/n1 --name n1 --initial-cluster n1=ws://10.0.0.1:7081,n2=ws://10.0.0.2:7081,n3=ws://10.0.0.3:7081', 'member n1 of a new three-member cluster; then start wardend with the same --name, --data-dir and --initial-cluster'),
  handler: action(async (ctx, args) => {
    const file = String(args['file']);
    if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
    const dataDir = String(args['data-dir']);
    const name = String(args['name']);
    const initialCluster = String(args['initial-cluster']);
    const started = performance.now();
    // Only the loader flags (tsx in a checkout), not an --inspect the CLI was started with.
    const loaders = loaderFlags(process.execArgv);
    // Its own process group: Ctrl-C reaches the CLI, which tells the restore to stop and waits for it.
    const child = spawn(process.execPath, [...loaders, restoreProgram(), '--file', file, '--data-dir', dataDir, '--name', name, '--initial-cluster', initialCluster, '--progress'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stopChild = (): void => void child.kill('SIGTERM');
    ctx.signal.addEventListener('abort', stopChild, { once: true });
    const stderr: string[] = [];
    child.stderr.setEncoding('utf8').on('data', (text: string) => stderr.push(text));
    const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 1)));
    const bar = progressBar(ctx.out, 'restore', (await stat(file)).size);
    let outcome: Record<string, unknown> | null = null;
    for await (const line of createInterface({ input: child.stdout })) {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // not the program's protocol: ignored
      }
      if (typeof message['progress'] === 'number') bar.update(message['progress']);
      else if (typeof message['ok'] === 'boolean') outcome = message;
    }
    const code = await exited;
    ctx.signal.removeEventListener('abort', stopChild);
    bar.stop();
    if (ctx.signal.aborted) {
      ctx.out.note(`interrupted: ${dataDir} holds an unfinished restore (wardend will not start on it); empty it to restore again`);
      return 130;
    }
    if (outcome === null || outcome['ok'] !== true) {
      const why = typeof outcome?.['error'] === 'string' ? outcome['error'] : `the restore program exited ${code}${stderr.length > 0 ? `: ${stderr.join('').trim().slice(0, 2_000)}` : ''}`;
      throw new Error(`restore failed: ${why}`);
    }
    const trailer = outcome['trailer'] as SnapshotFileTrailer;
    const voters = outcome['voters'] as string[];
    const seconds = (performance.now() - started) / 1000;
    const facts = { dataDir: outcome['dataDir'], name, clusterId: outcome['clusterId'], revision: trailer.summary.revision, appliedIndex: trailer.summary.appliedIndex, nodes: trailer.summary.nodes, voters: voters.join(','), sha256: outcome['sha256'], seconds: Number(seconds.toFixed(3)) };
    ctx.out.print({
      json: { ...facts, voters },
      simple: [
        `restored ${file} into ${String(outcome['dataDir'])} for ${name}: revision ${trailer.summary.revision}, ${trailer.summary.nodes} nodes, cluster ${String(outcome['clusterId'])} of ${voters.join(', ')} (${seconds.toFixed(1)} s)`,
        `start it: wardend --name ${name} --data-dir ${dataDir} --initial-cluster ${initialCluster} --listen-client … --listen-peer …`,
      ],
      table: { columns: ['FIELD', 'VALUE'], rows: factRows(facts) },
    });
    return 0;
  }, { long: true }),
};

export const snapshotCommand: CommandModule<object, Args> = {
  command: 'snapshot <command>',
  describe: 'back up a member\'s state to a file, check a file, restore a new cluster from one',
  builder: (y) => y.command([save, status, restore]).demandCommand(1, 'snapshot: save, status or restore'),
  handler: () => undefined,
};
