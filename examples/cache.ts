/**
 * The Cache recipe: a local, read-only mirror of a subtree (configuration, say) that follows
 * the cluster by itself. Run `npm start` in one terminal, then `npx tsx examples/cache.ts` in
 * another (WARDEN_ENDPOINTS picks other members).
 *
 * Must never: leave its nodes behind (it deletes the subtree it made before it exits).
 */

import { connect, WardenError, Cache } from '../client/index.js';

const endpoints = process.env['WARDEN_ENDPOINTS'] ?? 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';
const client = connect({ endpoints, timeoutMs: 5_000 });
const root = `/examples/cache-${process.pid}`;

try {
  await client.put(`${root}/db/url`, 'postgres://db1:5432/app'); // a put makes the missing parents
  const cache = new Cache(client, root, { maxNodes: 1_000 });
  cache.on('change', (change) => console.log(`${change.type.padEnd(6)} ${change.path} = ${JSON.stringify(change.node?.value ?? null)} (revision ${change.revision})`));
  cache.on('resync', (resync) => console.log(`history compacted past the cache: read afresh at revision ${resync.revision}`));
  cache.on('error', (error) => console.error(`the cache stopped: ${error.code} ${error.message}`));
  await cache.start();
  console.log(`cached ${cache.size} nodes of ${root} at revision ${cache.revision}`);

  // Writes from anywhere show up in the cache; whenRevision waits for one of them.
  await client.put(`${root}/db/pool`, '20');
  await client.put(`${root}/features/dark-mode`, 'on');
  await client.put(`${root}/db/url`, 'postgres://db2:5432/app');
  const last = await client.delete(`${root}/features`, { recursive: true });
  await cache.whenRevision(last.revision);

  // Reads are local: no round trip, no load on the cluster.
  console.log(`children of ${root}:`, cache.children(root));
  console.log(`db:`, cache.children(`${root}/db`)?.map((name) => `${name}=${cache.get(`${root}/db/${name}`)?.value}`));
  await cache.close();
} catch (error) {
  console.error(error instanceof WardenError ? `${error.code}: ${error.message}` : error);
  process.exitCode = 1;
} finally {
  await client.delete(root, { recursive: true }).catch(() => undefined);
  await client.delete('/examples').catch(() => undefined); // only if nothing else is under it
  await client.close();
}
