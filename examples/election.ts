/**
 * The Election recipe: two candidates, one leader at a time, each term with a fencing token.
 * Run `npm start` in one terminal, then `npx tsx examples/election.ts` in another
 * (WARDEN_ENDPOINTS picks other members). An observer prints every change of leader; the first
 * leader proclaims a new value and resigns, the second takes over; then the second's lease is
 * revoked behind its back, and its next proclaim is refused by the fence.
 *
 * Must never: leave its election path behind (it deletes it before it exits).
 */

import { connect, WardenError, Election } from '../client/index.js';

const endpoints = process.env['WARDEN_ENDPOINTS'] ?? 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';
const path = `/examples/election-${process.pid}`;
const alice = connect({ endpoints, timeoutMs: 5_000 });
const bob = connect({ endpoints, timeoutMs: 5_000 });
const stop = new AbortController();

try {
  // Anyone can watch the election without standing in it.
  const watching = (async () => {
    for await (const leader of new Election(alice, path).observe({ signal: stop.signal })) {
      console.log(leader === null ? 'observer: no leader' : `observer: ${leader.value} leads (token ${leader.token})`);
    }
  })();

  const first = new Election(alice, path, await alice.session({ ttlMs: 5_000 }));
  const second = new Election(bob, path, await bob.session({ ttlMs: 5_000 }));
  second.on('lost', ({ term, error }) => console.log(`bob: lost the term with token ${term.token} (${error.message})`));

  const termA = await first.campaign('alice:8080', { timeoutMs: 10_000 });
  console.log(`alice: elected with token ${termA.token}`);
  const bobElected = second.campaign('bob:8080', { timeoutMs: 30_000 });
  await first.proclaim('alice:9090'); // only the leader's own node changes, fenced by its token
  await first.resign();

  const termB = await bobElected;
  console.log(`bob: elected with token ${termB.token} (> ${termA.token})`);

  // Bob's lease is revoked (as if his process had paused past its TTL): a fenced proclaim is refused.
  await alice.leases.revoke((await alice.get(termB.path))!.stat.lease!);
  await second.proclaim('bob:still-here').then(
    () => console.log('bob: proclaimed (unexpected!)'),
    (error: unknown) => console.log(`bob: proclaim refused: ${error instanceof WardenError ? error.code : String(error)}`),
  );
  console.log(`term signal aborted: ${termB.signal.aborted}`);

  stop.abort();
  await watching;
} finally {
  await alice.delete(path, { recursive: true }).catch(() => undefined);
  await alice.close();
  await bob.close();
}
