/**
 * The cluster a test file shares: started before its tests (with a leader agreed), stopped and
 * removed after them. Kept apart from cluster.ts, which benchmarks import outside vitest.
 *
 * Must never: leave a process or a folder behind.
 */

import { afterAll, beforeAll } from 'vitest';
import { Cluster, type ClusterOptions } from './cluster.js';

/**
 * A cluster for one test file: started (and a leader agreed) before its tests, stopped and
 * removed after them. `use` receives it as soon as it is up.
 */
export function clusterForSuite(use: (cluster: Cluster) => void, options: ClusterOptions = {}, size = 3): void {
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    cluster = await Cluster.start(size, options);
    use(cluster);
    await cluster.leader();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });
}
