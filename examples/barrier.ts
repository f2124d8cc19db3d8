/**
 * The Barrier and DoubleBarrier recipes. Run `npm start` in one terminal, then
 * `npx tsx examples/barrier.ts` in another (WARDEN_ENDPOINTS picks other members).
 * Three workers wait on a barrier until a coordinator lowers it; then three participants meet
 * at a double barrier: nobody starts before all three are in, nobody finishes before all are out.
 *
 * Must never: leave its paths behind (it deletes them before it exits).
 */

import { connect, Barrier, DoubleBarrier } from '../client/index.js';

const endpoints = process.env['WARDEN_ENDPOINTS'] ?? 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';
const root = `/examples/barrier-${process.pid}`;
const client = connect({ endpoints, timeoutMs: 5_000 });

try {
  const gate = new Barrier(client, `${root}/gate`);
  await gate.set();
  const workers = [1, 2, 3].map(async (n) => {
    await new Barrier(client, `${root}/gate`).wait({ timeoutMs: 30_000 });
    console.log(`worker ${n}: through the gate`);
  });
  console.log('coordinator: the gate is up; getting ready for a second');
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // the coordinator's own preparation
  console.log('coordinator: lowering the gate');
  await gate.remove();
  await Promise.all(workers);

  const participants = await Promise.all(
    ['a', 'b', 'c'].map(async (id) => new DoubleBarrier(client, `${root}/meeting`, 3, await client.session({ ttlMs: 5_000 }), { id })),
  );
  await Promise.all(
    participants.map(async (participant, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 500)); // arrive one after another
      console.log(`${participant.id}: entering`);
      await participant.enter({ timeoutMs: 30_000 });
      console.log(`${participant.id}: all three are in; working`);
      await new Promise((resolve) => setTimeout(resolve, (3 - i) * 300)); // unequal work
      console.log(`${participant.id}: leaving`);
      await participant.leave({ timeoutMs: 30_000 });
      console.log(`${participant.id}: all have left`);
    }),
  );
} finally {
  await client.delete(root, { recursive: true }).catch(() => undefined);
  await client.close();
}
