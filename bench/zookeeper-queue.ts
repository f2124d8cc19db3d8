/**
 * ZooKeeper's lock recipe on `node-zookeeper-client`, for the comparisons of
 * `npm run bench:client` (bench/client-recipes.ts, bench/client-candidate.ts): each waiter makes
 * a sequential ephemeral node under the lock's folder, the lowest holds, and every other waiter
 * watches only its predecessor (ZooKeeper's "Locks" recipe; Curator's InterProcessMutex). The
 * same queue serves as the election recipe: the lowest node leads, its data is the leader's value.
 *
 * Must never: wait on anything but the predecessor (no herd); loop without a bound.
 */

import zookeeper from 'node-zookeeper-client';

/** The session timeout the comparisons use (ZooKeeper's floor at tickTime 2 s; Warden's at a 100 ms tick). */
export const SESSION_TTL_MS = 4_000;
const QUEUE_ROUNDS_MAX = 100_000;

export type ZkClient = ReturnType<typeof zookeeper.createClient>;

export function zkCall<T>(run: (done: (error: unknown, result?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => run((error, result) => (error ? reject(error) : resolve(result as T))));
}

export async function zkConnect(endpoints: readonly string[], sessionTimeout = SESSION_TTL_MS): Promise<ZkClient> {
  const client = zookeeper.createClient(endpoints.join(','), { sessionTimeout });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('zookeeper: not connected within 30 s')), 30_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  return client;
}

/** ZooKeeper's lock recipe: the lowest sequential ephemeral child holds; others watch their predecessor. */
export class ZkQueue {
  private mine: string | null = null;

  constructor(
    private readonly zk: ZkClient,
    private readonly dir: string,
    private readonly prefix = 'lock-',
  ) {}

  async enter(data: Buffer = Buffer.alloc(0)): Promise<void> {
    const mine = await zkCall<string>((done) => this.zk.create(`${this.dir}/${this.prefix}`, data, zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL, (e, p) => done(e, p)));
    this.mine = mine;
    const myName = mine.slice(this.dir.length + 1);
    for (let round = 0; round < QUEUE_ROUNDS_MAX; round++) {
      const children = (await zkCall<string[]>((done) => this.zk.getChildren(this.dir, (e, c) => done(e, c)))).filter((n) => n.startsWith(this.prefix)).sort();
      const at = children.indexOf(myName);
      if (at < 0) throw new Error(`zookeeper queue: ${mine} is gone (session expired?)`);
      if (at === 0) return;
      const predecessor = `${this.dir}/${children[at - 1]}`;
      // Wait for the predecessor's deletion only: no herd.
      await new Promise<void>((resolve, reject) => {
        this.zk.exists(predecessor, () => resolve(), (error, stat) => (error ? reject(error) : stat ? undefined : resolve()));
      });
    }
    throw new Error(`zookeeper queue: more than ${QUEUE_ROUNDS_MAX} predecessors left before ${mine}`);
  }

  async leave(): Promise<void> {
    const mine = this.mine;
    this.mine = null;
    if (mine !== null) await zkCall((done) => this.zk.remove(mine, -1, done));
  }
}
