/**
 * The PartitionAssignment recipe (Fixed Partitions): members come and go; the elected leader
 * maps 8 partitions to the live ones, moving as few as it can; each member hears its own.
 * Run `npm start` in one terminal, then `npx tsx examples/partition-assignment.ts` in another
 * (WARDEN_ENDPOINTS picks other members). The members here share one process for brevity; in
 * real use each is its own service instance, with its own client and session.
 *
 * Must never: leave its path behind (it deletes it before it exits).
 */

import { connect, type WardenClient, PartitionAssignment } from '../client/index.js';

const endpoints = process.env['WARDEN_ENDPOINTS'] ?? 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';
const path = `/examples/partitions-${process.pid}`;
const admin = connect({ endpoints, timeoutMs: 5_000 });
const members = new Map<string, PartitionAssignment>();
const clients: WardenClient[] = [admin];

async function join(id: string): Promise<PartitionAssignment> {
  const client = connect({ endpoints, timeoutMs: 5_000 });
  clients.push(client);
  const member = new PartitionAssignment(client, { path, partitions: 8, id, session: await client.session({ ttlMs: 5_000 }) });
  member.on('partitions', ({ mine, added, removed }) => console.log(`${id}: serves [${mine.join(',')}] (+[${added.join(',')}] -[${removed.join(',')}])`));
  member.on('elected', ({ token }) => console.log(`${id}: leads the assignment (token ${token})`));
  await member.start();
  members.set(id, member);
  return member;
}

/** Wait (bounded) until every member has seen a map giving each partition to one of them. */
async function settled(): Promise<void> {
  const ids = new Set(members.keys());
  for (const member of members.values()) {
    await member.waitUntil((m) => m.map !== null && m.map.owners.every((o) => o !== null && ids.has(o)) && new Set(m.map.owners).size === ids.size, { timeoutMs: 15_000 });
  }
  console.log(`map: ${[...members.values()][0]!.map!.owners.map((o, p) => `${p}→${o}`).join(' ')}`);
}

try {
  for (const id of ['alpha', 'beta', 'gamma']) {
    await join(id);
    await settled();
  }
  console.log('delta joins: only the partitions it needs move to it');
  await join('delta');
  await settled();
  console.log('beta leaves: only its partitions move');
  await members.get('beta')!.stop();
  members.delete('beta');
  await settled();
} finally {
  for (const member of members.values()) await member.stop().catch(() => undefined);
  await admin.delete(path, { recursive: true }).catch(() => undefined);
  for (const client of clients) await client.close();
}
