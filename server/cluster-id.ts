/**
 * A cluster's identity, as etcd's cluster ID: a short hash every member keeps in its data
 * directory (`cluster-id`) and says in every peer hello (server/transport), so members of two
 * clusters that share names and addresses — an old cluster left running beside one restored
 * from a backup, members restored from different snapshots — refuse each other instead of
 * counting each other's votes and acknowledgements.
 *
 * A new cluster's members compute it alike from --initial-cluster (no coordination); a restore
 * computes it from the snapshot file's SHA-256 and --initial-cluster, so each restored cluster is
 * a cluster of its own. Once written, the file is the identity: flags changed later do not change it.
 *
 * Must never: change a member's identity once written; let two different restores of one
 * --initial-cluster share one.
 */

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeId } from './raft/types.js';
import { syncDirectory } from './storage/snapshot.js';

export const CLUSTER_ID_FILE = 'cluster-id';

/** `--initial-cluster` spelled one way: name=URL pairs sorted by name. */
function canonical(cluster: ReadonlyMap<NodeId, string>): string {
  return [...cluster].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, url]) => `${name}=${url}`).join(',');
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** The identity of a cluster started new from `cluster`. */
export function newClusterId(cluster: ReadonlyMap<NodeId, string>): string {
  return digest(`warden cluster\n${canonical(cluster)}`);
}

/** The identity of a cluster restored from the snapshot file whose SHA-256 is `fileSha256`. */
export function restoredClusterId(cluster: ReadonlyMap<NodeId, string>, fileSha256: string): string {
  return digest(`warden restored cluster\n${fileSha256}\n${canonical(cluster)}`);
}

/** The identity written in `dataDir`, or null if none is. */
export function readClusterId(dataDir: string): string | null {
  const file = join(dataDir, CLUSTER_ID_FILE);
  if (!existsSync(file)) return null;
  const id = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{16}$/.test(id)) throw new Error(`${file} does not hold a cluster id (16 hex digits): it is damaged`);
  return id;
}

/** Write `id` into `dataDir`, durably. */
export async function writeClusterId(dataDir: string, id: string): Promise<void> {
  const file = join(dataDir, CLUSTER_ID_FILE);
  await writeFile(file, `${id}\n`);
  await syncDirectory(file);
  await syncDirectory(dataDir);
}

/** This member's identity: the one in its data directory, or (a new member, or one from before identities) a new cluster's, written there. */
export async function clusterIdOf(dataDir: string, cluster: ReadonlyMap<NodeId, string>): Promise<string> {
  const kept = readClusterId(dataDir);
  if (kept !== null) return kept;
  const id = newClusterId(cluster);
  await writeClusterId(dataDir, id);
  return id;
}
