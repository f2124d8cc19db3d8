/**
 * The Lock recipe: acquire → a fenced write → release. Run `npm start` in one terminal, then
 * `npx tsx examples/lock.ts` in another (WARDEN_ENDPOINTS picks other members); run it twice at
 * once to see the second wait for the first.
 *
 * Must never: write the protected node except through the lock's fence; delete the lock's path
 * (another run may be queued under it — the empty path stays, as Curator's lock paths do).
 */

import { connect, Lock, LockLostError } from '../client/index.js';

const endpoints = process.env['WARDEN_ENDPOINTS'] ?? 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';
const client = connect({ endpoints, timeoutMs: 5_000 });
const lock = new Lock(client, '/examples/locks/report', { ttlMs: 10_000 });

try {
  const token = await lock.acquire({ timeoutMs: 30_000 });
  console.log(`holding ${lock.path} with fencing token ${token}`);

  // The write applies only while this hold stands: a holder that lost its lease is refused.
  const written = await lock.fencedPut('/examples/report', `written under token ${token}`);
  console.log(`fenced write applied at revision ${written.revision}`);

  await new Promise((resolve) => setTimeout(resolve, 2_000)); // the critical section
  console.log(`released at revision ${await lock.release()}`);

  await lock.fencedPut('/examples/report', 'too late').catch((error: unknown) => {
    if (error instanceof LockLostError) console.log(`after release a fenced write is refused: ${error.message}`);
    else throw error;
  });
} finally {
  await lock.close();
  await client.delete('/examples/report').catch(() => undefined);
  await client.close();
}
