/**
 * One election candidate in a process of its own, for the failover workload of
 * `npm run bench:client` (bench/client-recipes.ts), which SIGKILLs the leading one: no resign,
 * so its session (4 s TTL) must expire before the next candidate leads.
 *
 * usage: node --import tsx bench/client-candidate.ts warden|etcd|zookeeper <endpoints,comma-separated> <path or name> <value>
 *
 * Must never: outlive the bench (it exits when its stdin — a pipe from the bench — closes).
 */

import { Etcd3 } from 'etcd3';
import { connect } from '../client/index.js';
import { Election } from '../client/recipes/election.js';
import { SESSION_TTL_MS, zkCall, zkConnect, ZkQueue } from './zookeeper-queue.js';

const [system, endpointList, where, value] = process.argv.slice(2) as [string, string, string, string];
const endpoints = endpointList.split(',');
const CAMPAIGN_TIMEOUT_MS = 15 * 60_000;

// The bench holds our stdin open; when it goes, so do we.
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

const fail = (error: unknown): never => {
  process.stderr.write(`candidate ${value}: ${String(error)}\n`);
  process.exit(1);
};

try {
  if (system === 'warden') {
    const client = connect({ endpoints, timeoutMs: 30_000 });
    const session = await client.session({ ttlMs: SESSION_TTL_MS });
    await new Election(client, where, session).campaign(value, { timeoutMs: CAMPAIGN_TIMEOUT_MS });
  } else if (system === 'etcd') {
    const client = new Etcd3({ hosts: endpoints });
    await client.election(where, SESSION_TTL_MS / 1000).campaign(value).wait();
  } else if (system === 'zookeeper') {
    const zk = await zkConnect(endpoints);
    await zkCall((done) => zk.mkdirp(where, done));
    await new ZkQueue(zk, where).enter(Buffer.from(value));
  } else {
    fail(`unknown system ${system}`);
  }
} catch (error) {
  fail(error);
}
// Elected: hold office until killed.
