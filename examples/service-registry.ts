/**
 * The ServiceRegistry recipe: instances register as ephemeral nodes; a watcher sees the whole
 * membership after every change. Run `npm start` in one terminal, then
 * `npx tsx examples/service-registry.ts` in another (WARDEN_ENDPOINTS picks other members).
 *
 * Must never: leave its group behind (it deletes it before it exits).
 */

import { connect, ServiceRegistry } from '../client/index.js';

interface Endpoint {
  readonly host: string;
  readonly port: number;
}

const endpoints = process.env['WARDEN_ENDPOINTS'] ?? 'ws://127.0.0.1:7071,ws://127.0.0.1:7072,ws://127.0.0.1:7073';
const root = `/examples/services-${process.pid}`;
const client = connect({ endpoints, timeoutMs: 5_000 });
const stop = new AbortController();

try {
  const watcher = new ServiceRegistry(client, { root });
  let changes = 0;
  let sawAll: () => void = () => undefined;
  const allSeen = new Promise<void>((resolve) => (sawAll = resolve));
  const watching = (async () => {
    for await (const members of watcher.watch<Endpoint>('api', { signal: stop.signal })) {
      console.log(`api members: [${members.map((m) => `${m.id}@${m.info.host}:${m.info.port}`).join(', ')}]`);
      if (++changes === 6) sawAll(); // empty, +1, +2, an update, -2, -1
    }
  })();

  // Two instances, each with its own session: each is a member for as long as its session lives.
  const one = new ServiceRegistry(client, { root, session: await client.session({ ttlMs: 5_000 }) });
  const twoSession = await client.session({ ttlMs: 5_000 });
  const two = new ServiceRegistry(client, { root, session: twoSession });
  const first = await one.register<Endpoint>('api', 'api-1', { host: '10.0.0.1', port: 8080 });
  await two.register<Endpoint>('api', 'api-2', { host: '10.0.0.2', port: 8080 });
  await first.update({ host: '10.0.0.1', port: 9090 });
  console.log(`members now: ${(await watcher.members<Endpoint>('api')).map((m) => m.id).join(', ')}`);
  await twoSession.close(); // the instance goes away: its registration with it
  await first.deregister();

  // The watch shows every membership in order: wait (bounded) until it has shown the last one.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([allSeen, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
  clearTimeout(timer);
  stop.abort();
  await watching;
} finally {
  await client.delete(root, { recursive: true }).catch(() => undefined);
  await client.close();
}
