/**
 * One contender of the lock race (test/client/lock.test.ts), as its own process so the test can
 * freeze it: it takes the lock `--iterations` times and, while holding, increments the counter
 * node with a fenced read-modify-write. Every step is a JSON line on stdout — the history the
 * test checks. With `--pause-at N` it stops itself (SIGSTOP) while holding its N-th acquisition,
 * after reading the counter and before writing it: the paused holder of the Jepsen story. Once
 * continued it tries its stale write twice (fencedPut, then a txn through `guard`): both must
 * be refused.
 *
 * Must never: write the counter except through the lock's fence; run without a bound (every
 * wait has a deadline, attempts are counted).
 */

import { parseArgs } from 'node:util';
import { connect, op, WardenError } from '../../client/index.js';
import { Lock } from '../../client/recipes/lock.js';
import { LockLostError } from '../../client/recipes/queue.js';

const { values } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    name: { type: 'string' },
    lock: { type: 'string' },
    counter: { type: 'string' },
    iterations: { type: 'string', default: '5' },
    'pause-at': { type: 'string', default: '0' },
    'ttl-ms': { type: 'string', default: '2000' },
  },
});

const name = values.name!;
const counter = values.counter!;
const iterations = Number(values.iterations);
const pauseAt = Number(values['pause-at']);
const log = (event: string, fields: Record<string, unknown> = {}): void => void process.stdout.write(`${JSON.stringify({ event, name, ...fields })}\n`);
const describe = (error: unknown): string => (error instanceof WardenError ? `${error.code}: ${error.message}` : String(error));

// The client's own timers do not hold the process open (client/transport.ts), so a call that
// waits out a failover between dials would let Node exit (code 13) under it: hold it open here.
const keepOpen = setInterval(() => undefined, 1_000);
const client = connect({ endpoints: values.endpoints!, timeoutMs: 15_000 });
const lock = new Lock(client, values.lock!, { ttlMs: Number(values['ttl-ms']) });
lock.on('lost', (error) => log('lost', { token: lock.token, why: error.message }));

let acquisitions = 0;
for (let attempt = 0; acquisitions < iterations && attempt < iterations * 4; attempt++) {
  let token: number;
  try {
    token = await lock.acquire({ timeoutMs: 30_000 });
  } catch (error) {
    log('acquire-failed', { why: describe(error) });
    continue;
  }
  acquisitions += 1;
  // The client has read the state in which every earlier queue entry is gone, at least this new.
  log('acquired', { token, revision: client.revision });
  try {
    const current = await client.get(counter);
    const count = current === null ? 0 : Number(current.value.split(' ')[0]);
    const next = `${count + 1} ${token}`;
    if (acquisitions === pauseAt) {
      log('pausing', { token });
      process.kill(process.pid, 'SIGSTOP');
      log('resumed', { token });
    }
    try {
      const written = await lock.fencedPut(counter, next);
      log('write', { token, count: count + 1, revision: written.revision });
    } catch (error) {
      if (error instanceof LockLostError) log('refused', { token, count: count + 1, how: 'fencedPut' });
      else if (error instanceof WardenError && error.outcomeUnknown) log('unknown', { token, count: count + 1, why: describe(error) });
      else throw error;
      if (acquisitions === pauseAt && error instanceof LockLostError) {
        // The stale holder tries again by hand: a txn fenced with guard() is refused whole.
        try {
          await lock.guard(client.txn().do(op.put(counter, next))).commit();
          log('write', { token, count: count + 1, how: 'guard' });
        } catch (again) {
          if (again instanceof WardenError && again.code === 'NO_NODE') log('refused', { token, count: count + 1, how: 'guard' });
          else throw again;
        }
      }
    }
  } catch (error) {
    log('error', { token, why: describe(error) });
  }
  try {
    log('released', { token, revision: await lock.release() });
  } catch (error) {
    log('release-failed', { token, why: describe(error) });
  }
}
await lock.close().catch(() => undefined);
await client.close();
log('done', { acquisitions });
clearInterval(keepOpen);
